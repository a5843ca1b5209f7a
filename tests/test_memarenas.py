# -*- test-case-name: tests.test_memarenas -*-
"""
The map of pymalloc's arenas to what lives in them (L{gateway.memarenas}).
"""

from twisted.trial import unittest

from gateway import memarenas


class Pinned:
    """
    A small object the tests look for in the map.
    """


def skipUnlessSupported(case):
    if not memarenas.supported():
        raise unittest.SkipTest("the arena map reads 64-bit CPython 3.11's pymalloc")


class ArenaMapTests(unittest.TestCase):
    def setUp(self):
        skipUnlessSupported(self)

    def test_poolOfSmallObject(self):
        """A small object's pool header names a size class that holds it and counts it in use."""
        arenaMap = memarenas.ArenaMap()
        o = Pinned()
        pool = arenaMap.pool(id(o), memarenas.objectSize(o))
        self.assertIsNotNone(pool)
        self.assertGreaterEqual(pool.blockSize, memarenas.objectSize(o))
        self.assertGreaterEqual(pool.used, 1)
        self.assertIn(pool, arenaMap.arenas[pool.arena])

    def test_largeAndStaticLeftOut(self):
        """A large object (malloc's) and a static one (the interpreter's data) are not taken for pymalloc blocks."""
        arenaMap = memarenas.ArenaMap()
        big = b"x" * 100000
        self.assertIsNone(arenaMap.pool(id(big), memarenas.objectSize(big)))
        self.assertIsNone(arenaMap.pool(id(None), 16))
        self.assertIsNone(arenaMap.pool(id(int), 16))

    def test_innerBlocks(self):
        """A dict's keys table, a list's item array and a large set's table are found, a small set's is not."""
        d = {"a": 1}
        items = [1, 2, 3]
        big, small = set(range(20)), {1}
        [(keys, _, what)] = memarenas.innerBlocks(d)
        self.assertIn("keys table of a dict of 1 items", what)
        [(array, size, what)] = memarenas.innerBlocks(items)
        self.assertGreaterEqual(size, 3 * 8)
        self.assertIn("item array of a list of 3", what)
        [(table, size, what)] = memarenas.innerBlocks(big)
        self.assertEqual(size % 16, 0)
        self.assertIn("hash table of a set of 20", what)
        self.assertEqual(memarenas.innerBlocks(small), [])
        self.assertEqual(len({keys, array, table}), 3)


class ArenaReportTests(unittest.TestCase):
    def setUp(self):
        skipUnlessSupported(self)

    def test_sparseArenaContents(self):
        """The report names what lives in the sparsest arena, by type and size, and who refers to it."""
        # Fill arenas with short-lived objects, keep one in each 2,000: the
        # arenas left hold the kept ones only.
        made = [Pinned() for _ in range(200000)]
        kept = made[::2000]
        holder = {"pinned": kept}
        del made

        def objects(arenaMap, exclude):
            yield from kept
            yield holder

        text = "\n".join(memarenas.arenaReport(sparsest=100, objects=objects))
        self.assertRegex(text, r"\d+ objects walked; \d+ arenas with a live block")
        self.assertRegex(text, r"\n +\d+ x +\d+ B tests\.test_memarenas\.Pinned: <tests\.test_memarenas\.Pinned")
        self.assertIn("Pinned object at 0x", text.split("\n", 3)[-1])
        self.assertIn("<- builtins.list", text)
        self.assertEqual(len(kept), 100)

    def test_unnamedValue(self):
        """A live string among the blocks the walk did not meet is shown by its value, a free block not at all."""
        text = "".join(["unmet-", "x" * 30])
        arenaMap = memarenas.ArenaMap()
        pool = arenaMap.pool(id(text), memarenas.objectSize(text))
        found = memarenas.unnamedBlocks(pool, set(), {id(str): "builtins.str"})
        self.assertIn(("builtins.str", repr(text)), found)
        self.assertEqual(memarenas.unnamedBlocks(pool, {id(text)}, {id(str): "builtins.str"}).count(
            ("builtins.str", repr(text))), 0)

    def test_unsupported(self):
        """Where the layout is another, the report says so and reads nothing."""
        self.patch(memarenas, "supported", lambda: False)
        self.assertEqual(memarenas.arenaReport(), ["(the arena map needs 64-bit CPython 3.11 with pymalloc)"])


class WalkTests(unittest.TestCase):
    def setUp(self):
        skipUnlessSupported(self)

    def test_reachesFrozenAndUntracked(self):
        """The walk meets what only a frozen object refers to, untracked objects, each once, and leaves out what it is told to."""
        import gc
        import sys

        module = type(sys)("gateway_test_frozen")
        module.marker = ("marker", 1234567891)  # untracked once the collector looks at it
        hidden = {"hidden": object()}
        left = [hidden]
        sys.modules[module.__name__] = module
        self.addCleanup(sys.modules.pop, module.__name__)
        gc.collect()
        gc.freeze()
        self.addCleanup(gc.unfreeze)
        self.assertFalse(gc.is_tracked(module.marker))
        ids = [id(o) for o in memarenas.reachableObjects(exclude=[left])]
        self.assertEqual(ids.count(id(module.marker)), 1)
        self.assertEqual(ids.count(id(module.marker[1])), 1)
        self.assertNotIn(id(hidden), ids)
        self.assertNotIn(id(hidden["hidden"]), ids)
