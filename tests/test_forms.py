# -*- test-case-name: tests.test_forms -*-
"""
Tests for L{gateway.cred.forms}: the stored forms of one password and the
mechanisms each serves.
"""

import hmac

from twisted.trial.unittest import TestCase

from gateway.cred import forms, passwords


class FormsTests(TestCase):
    """
    Making, splitting and choosing stored password forms.
    """

    def test_makeForms(self):
        """The default mechanisms get a strong hash first, then SCRAM-SHA-256 keys and the CRAM-MD5 context."""
        stored = forms.makeForms("pw")
        self.assertEqual(forms.schemes(stored), ["SHA512-CRYPT", "SCRAM-SHA-256", "CRAM-MD5"])
        self.assertEqual(forms.missingMechanisms(stored, forms.KNOWN_MECHANISMS), [])
        for form in forms.splitForms(stored):
            self.assertTrue(passwords.verifyPassword(form, "pw"), form)
            self.assertFalse(passwords.verifyPassword(form, "px"), form)

    def test_fewerMechanisms(self):
        """Only the forms the mechanisms need are stored; a {PLAIN} scheme serves everything alone."""
        self.assertEqual(forms.schemes(forms.makeForms("pw", ("PLAIN", "LOGIN"))), ["SHA512-CRYPT"])
        self.assertEqual(forms.schemes(forms.makeForms("pw", ("CRAM-MD5",))), ["SHA512-CRYPT", "CRAM-MD5"])
        self.assertEqual(forms.schemes(forms.makeForms("pw", forms.KNOWN_MECHANISMS, "cleartext")), ["PLAIN"])
        self.assertEqual(forms.schemes(forms.makeForms("pw", forms.KNOWN_MECHANISMS, "SCRAM-SHA-256")),
                         ["SCRAM-SHA-256", "CRAM-MD5"])

    def test_missing(self):
        """Single imported forms serve what their scheme allows."""
        crypt = passwords.hashPassword("pw", "SHA512-CRYPT")
        self.assertEqual(forms.missingMechanisms(crypt, forms.KNOWN_MECHANISMS), ["SCRAM-SHA-256", "CRAM-MD5"])
        cram = passwords.hashPassword("pw", "CRAM-MD5")
        self.assertEqual(forms.missingMechanisms(cram, forms.KNOWN_MECHANISMS), ["SCRAM-SHA-256"])
        self.assertEqual(forms.missingMechanisms("{PLAIN}pw", forms.KNOWN_MECHANISMS), [])
        self.assertEqual(forms.missingMechanisms("", ("PLAIN",)), ["PLAIN"])
        self.assertEqual(forms.missingMechanisms("{ROT13}x", ("PLAIN",)), ["PLAIN"])

    def test_choose(self):
        """plainForm prefers an expensive hash; cramForm and scramForm find their forms wherever they are."""
        stored = forms.joinForms([
            passwords.hashPassword("pw", "CRAM-MD5"),
            passwords.hashPassword("pw", "SCRAM-SHA-256"),
            passwords.hashPassword("pw", "SHA512-CRYPT"),
        ])
        self.assertEqual(passwords.schemeOf(forms.plainForm(stored)), "SCRAM-SHA-256")
        self.assertEqual(passwords.schemeOf(forms.cramForm(stored)), "CRAM-MD5")
        self.assertEqual(passwords.schemeOf(forms.scramForm(stored, "sha256")), "SCRAM-SHA-256")
        self.assertIsNone(forms.scramForm(stored, "sha1"))
        self.assertEqual(forms.plainForm("{PLAIN}pw"), "{PLAIN}pw")
        self.assertIsNone(forms.plainForm("{ROT13}pw"))
        challenge = b"<1@x>"
        digest = hmac.new(b"pw", challenge, "md5").hexdigest()
        self.assertTrue(passwords.verifyCramMD5(forms.cramForm(stored), challenge, digest))
        self.assertTrue(forms.verifyPlain(stored, "pw"))
        self.assertFalse(forms.verifyPlain(stored, "px"))

    def test_splitForms(self):
        """Forms are one a line; blank lines and surrounding blanks are dropped."""
        self.assertEqual(forms.splitForms("{A}1\n\n  {B}2 \n"), ("{A}1", "{B}2"))
        self.assertEqual(forms.splitForms(None), ())

    def test_effectiveMechanisms(self):
        """A domain's list narrows the configured one, keeping the configured order."""

        class Domain:
            mechanisms = ("CRAM-MD5", "PLAIN", "GSSAPI")

        configured = ("PLAIN", "LOGIN", "SCRAM-SHA-256", "CRAM-MD5")
        self.assertEqual(forms.effectiveMechanisms(configured, Domain()), ["PLAIN", "CRAM-MD5"])
        self.assertEqual(forms.effectiveMechanisms(configured, None), list(configured))
