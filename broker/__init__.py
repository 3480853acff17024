"""The consent broker: accounts, OAuth, consent, value exchange, audit, and their HTTP faces."""
