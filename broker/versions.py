"""Which release this is, and which version of the HTTP API it serves.

`RELEASE` is the installed distribution's version, which comes from the repository's `VERSION` file (the
server, the brand SDK and the auditor are released together under it). `API_VERSION` is the version
of the HTTP contract under `/v1`: it changes only when a change would break a client, and a server
may then serve more than one. Clients learn it two ways, and refuse a server that speaks none of
theirs with a message that says which to upgrade:

- the `consentry_api_versions` member of the discovery metadata (RFC 8414 allows extra members),
  which the brand SDK reads before its first call;
- the `Consentry-API-Version` header on every answer, which the auditor checks on each.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["API_VERSION", "API_VERSIONS", "API_VERSION_HEADER", "RELEASE"]

API_VERSION = "1"
API_VERSIONS = (API_VERSION,)  # every API version this server serves, newest last
API_VERSION_HEADER = "Consentry-API-Version"

try:
    RELEASE = version("consentry")
except PackageNotFoundError:  # run from a source tree that was never installed
    RELEASE = "0+unknown"
