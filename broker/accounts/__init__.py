"""Accounts: customers (sign-up, passwords (argon2id), sessions, second factors, login throttling,
the account rows' removal), brands (`models.Brand`, the OAuth clients; their registration is
`broker.oauth.clients`) and auditors."""
