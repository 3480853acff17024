"""Helpers the tests share (importable as `support.<module>`: pytest puts tests/ on the path).

core        settings, sign-up and log-in, fake clocks and sleeps, bearer headers
oauth       brands, offers, the consent flow and tokens
mail        the .eml sink and the real SMTP server of the tests
factors     passkeys and TOTP: enrol, step up, log in with a second factor
webauthn    a software authenticator
lifecycle   moving grants through time (expiry, renewal, retention)
webhooks    a receiver of signed webhooks
browser     Playwright pages of the portal
resilience  servers in subprocesses, database outages
problems    the check that every problem answered is documented in OpenAPI
vectors     the transparency log's known-answer vectors (tests/vectors/*.json)
served      stand-in servers for the clients' tests, naming the API version as a real one does
dists       the distributions' wheels and the clients' fresh environments (tests/dists)
"""
