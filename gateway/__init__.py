"""
gateway: a Twisted multi-protocol access server (IMAP, POP3, HTTP, FTP, LMTP)
over one Account/Domain realm.
"""

__version__ = "0.1.0"
