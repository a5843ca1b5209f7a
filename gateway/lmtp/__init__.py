"""
LMTP (RFC 2033) for the MTA, and the local delivery both it and
C{gatewayctl deliver} use.
"""
