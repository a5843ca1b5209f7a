# -*- test-case-name: tests.test_interfaces -*-
"""
Tests for L{gateway.interfaces}: the package is the one seam every module
imports interfaces from, whichever of its modules defines them.
"""

import importlib
import pkgutil

from twisted.trial import unittest
from zope.interface.interface import InterfaceClass

import gateway.interfaces


def _definedInModules():
    """
    @return: C{{name: module name}} of every interface the modules of
        L{gateway.interfaces} define.
    """
    defined = {}
    for info in pkgutil.iter_modules(gateway.interfaces.__path__):
        module = importlib.import_module("gateway.interfaces." + info.name)
        for name, value in vars(module).items():
            if isinstance(value, InterfaceClass) and value.__module__ == module.__name__:
                defined[name] = module.__name__
    return defined


class PackageTests(unittest.TestCase):
    """
    L{gateway.interfaces} gives every interface its modules define.
    """

    def test_everyInterfaceExported(self):
        """Each interface a module of the package defines is importable from the package and in __all__."""
        defined = _definedInModules()
        self.assertTrue(defined)
        self.assertEqual(sorted(gateway.interfaces.__all__), sorted(defined))
        for name, moduleName in defined.items():
            self.assertIs(getattr(gateway.interfaces, name),
                          getattr(importlib.import_module(moduleName), name))

    def test_exportsAreInterfaces(self):
        """Every name in the package's __all__ is an interface, defined in one module of the package."""
        for name in gateway.interfaces.__all__:
            value = getattr(gateway.interfaces, name)
            self.assertIsInstance(value, InterfaceClass)
            self.assertTrue(value.__module__.startswith("gateway.interfaces."), value.__module__)
