"""Offers, grants and their lifecycle, and the record of every read."""
