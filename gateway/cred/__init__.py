"""Credentials: portal, realm, checkers, SASL mechanisms, password schemes."""
