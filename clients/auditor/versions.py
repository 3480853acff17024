"""This auditor's release, and the versions of the Consentry API it speaks.

A server names the API versions it serves in the `Consentry-API-Version` header of every answer; the
auditor's client checks it on each and refuses, with `IncompatibleServer`, a server that shares none
of `API_VERSIONS`, saying whether this tool or the server is the older one.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["API_VERSIONS", "API_VERSION_HEADER", "DISTRIBUTION", "RELEASE"]

DISTRIBUTION = "consentry-audit"
API_VERSIONS = ("1",)  # the versions of the server's auditor API (`/v1/audit`) this tool speaks
API_VERSION_HEADER = "Consentry-API-Version"

try:
    RELEASE = version(DISTRIBUTION)
except PackageNotFoundError:  # imported from a source tree that was never installed
    RELEASE = "0+unknown"
