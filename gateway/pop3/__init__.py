# -*- test-case-name: tests.test_pop3 -*-
"""
The POP3 front-end (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH,
RFC 3206 response codes) over the account's INBOX.

Modules: L{server} (framing, command table, CAPA, the factory),
L{auth} (AUTHORIZATION state), L{transaction} (TRANSACTION and UPDATE),
L{stream} (dot-stuffed, constant-memory message streaming).
"""
