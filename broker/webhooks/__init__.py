"""Webhooks: brands are told of grant and value events at endpoints they register (Standard Webhooks).

models.py     endpoints, the outbox of messages, the delivery log
addresses.py  which URLs may be sent to (no private or loopback targets: SSRF)
signing.py    the signature headers, and endpoint secrets derived from a server key
service.py    endpoint management, and the notice subscriber that writes the outbox
delivery.py   the worker that sends due messages, with retries and backoff
schemas.py    the API's shapes
"""
