# -*- test-case-name: tests.test_forms -*-
"""
The forms one account's password is stored in, and which SASL mechanisms
each form can serve.

An account's C{password} (C{account.ini}) holds one or more stored
passwords in Dovecot's C{{SCHEME}data} notation, one per line; each line is
a complete Dovecot passwd-file password field on its own::

    [account]
    password = {SHA512-CRYPT}$6$...
        {SCRAM-SHA-256}4096,c2FsdA==,...,...
        {CRAM-MD5}7a5d...

Setting a password (L{makeForms}) stores every form the enabled mechanisms
need: a strong hash for the plain mechanisms (first), the SCRAM-SHA-256
salted keys, and the CRAM-MD5 HMAC context.  A password imported from
Dovecot is a single line; the mechanisms it cannot serve are reported by
L{missingMechanisms}.

Which form serves what:

    - plain mechanisms (C{PLAIN}, C{LOGIN}, IMAP C{LOGIN}, POP3 C{USER},
      FTP, HTTP Basic): the first form whose scheme is known (every known
      scheme can verify a plain-text password);
    - C{CRAM-MD5}: the first C{{CRAM-MD5}} or C{{PLAIN}} form;
    - C{SCRAM-SHA-256}: the first C{{SCRAM-SHA-256}} or C{{PLAIN}} form.
"""

from gateway.cred import passwords

#: Mechanisms the server knows, in the default order of preference.
KNOWN_MECHANISMS = ("PLAIN", "LOGIN", "SCRAM-SHA-256", "CRAM-MD5")
#: Mechanisms whose password crosses the connection.
CLEARTEXT_MECHANISMS = frozenset({"PLAIN", "LOGIN"})


def splitForms(stored):
    """
    @param stored: the C{password} text of an account (one form a line), or
        C{None}.
    @return: C{tuple} of the non-empty forms, in order.
    """
    return tuple(line.strip() for line in (stored or "").splitlines() if line.strip())


def joinForms(forms):
    """
    @return: the C{password} text for C{forms} (one a line).
    """
    return "\n".join(forms)


def _schemeForMechanism(mechanism, plainScheme):
    if mechanism in CLEARTEXT_MECHANISMS:
        return plainScheme
    return mechanism


def makeForms(plain, mechanisms=KNOWN_MECHANISMS, scheme=passwords.DEFAULT_SCHEME):
    """
    Every form of a new password that C{mechanisms} need.

    @param plain: the password.
    @param mechanisms: the mechanisms it must serve (names from
        L{KNOWN_MECHANISMS}).
    @param scheme: the scheme of the form for plain mechanisms (it is
        always stored, first, since FTP and HTTP log in with plain
        passwords whatever the SASL mechanisms).
    @return: the C{password} text (see the module docstring).
    """
    schemes = [passwords.canonicalScheme(scheme)]
    for mechanism in mechanisms:
        wanted = _schemeForMechanism(mechanism, schemes[0])
        if wanted not in schemes and not canServe(schemes, mechanism):
            schemes.append(wanted)
    return joinForms(passwords.hashPassword(plain, s) for s in schemes)


def canServe(schemes, mechanism):
    """
    @param schemes: the scheme names of stored forms (see L{schemes}).
    @return: C{True} when a form of one of C{schemes} serves C{mechanism}.
    """
    if mechanism in CLEARTEXT_MECHANISMS:
        return any(s is not None and passwords.isKnownScheme(s) for s in schemes)
    if mechanism == "CRAM-MD5":
        return any(s in ("CRAM-MD5", "PLAIN") for s in schemes)
    if mechanism == "SCRAM-SHA-256":
        return any(s in ("SCRAM-SHA-256", "PLAIN") for s in schemes)
    return False


def missingMechanisms(stored, mechanisms):
    """
    @return: C{list} of the C{mechanisms} an account whose C{password} is
        C{stored} cannot serve.
    """
    stored = schemes(stored)
    return [m for m in mechanisms if not canServe(stored, m)]


def plainForm(stored):
    """
    The form plain-text passwords are checked against: the first one of a
    known scheme, preferring an expensive hash.

    @return: C{str} or C{None}.
    """
    known = [f for f in splitForms(stored) if passwords.isKnownScheme(passwords.schemeOf(f))]
    for form in known:
        if passwords.isExpensive(form):
            return form
    return known[0] if known else None


def cramForm(stored):
    """
    @return: the first form that gives a CRAM-MD5 context, or C{None}.
    """
    for form in splitForms(stored):
        if passwords.cramMD5Context(form) is not None:
            return form
    return None


def scramForm(stored, hashName):
    """
    @return: the first form that gives SCRAM keys for C{hashName} (a SCRAM
        form of that hash, or C{{PLAIN}}), or C{None}.
    """
    wanted = {"sha256": "SCRAM-SHA-256", "sha1": "SCRAM-SHA-1"}.get(hashName)
    for form in splitForms(stored):
        if passwords.schemeOf(form) in (wanted, "PLAIN"):
            return form
    return None


def schemes(stored):
    """
    @return: C{list} of the schemes of the stored forms, for display.
    """
    return [passwords.schemeOf(f) for f in splitForms(stored)]


def effectiveMechanisms(configured, domain):
    """
    The mechanisms an account of C{domain} may use: the configured ones
    (C{[auth] mechanisms}, in that order), narrowed by the domain's own
    C{mechanisms} setting when it has one.

    @param domain: an L{gateway.interfaces.IDomain} or C{None}.
    """
    narrowed = getattr(domain, "mechanisms", ()) or ()
    if not narrowed:
        return list(configured)
    return [m for m in configured if m in narrowed]


def verifyPlain(stored, plain):
    """
    Check a plain-text password against an account's C{password} (for
    tools and tests; the checker also equalizes the work, see
    L{gateway.cred.checkers}).

    @return: C{bool}
    """
    form = plainForm(stored)
    return form is not None and passwords.verifyPassword(form, plain)
