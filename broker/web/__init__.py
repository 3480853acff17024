"""What the JSON API and the portal share over HTTP: dependencies, error answers, middleware, pages.

`broker.api` and `broker.portal` both build on this package and never on each other.
"""
