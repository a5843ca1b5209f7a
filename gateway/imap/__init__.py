# -*- test-case-name: tests.test_imap_protocol -*-
"""
The IMAP4rev1 front-end: our own protocol core on Twisted's transport, TLS,
cred and the C{imap4-utf-7} codec.
"""
