"""Consent receipts: a signed copy, for the customer and the brand, of each consent event of a grant."""
