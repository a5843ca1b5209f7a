"""
Domains, accounts and the routing of login names and addresses to accounts.
"""
