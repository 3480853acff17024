"""The customer's data vault: field catalogue, envelope encryption, keys and profiles.

Nothing here knows about OAuth or HTTP; the broker calls in, never the other way round.
"""
