"""This SDK's release, and the versions of the Consentry API it speaks.

A broker names the API versions it serves in its discovery metadata (`consentry_api_versions`); the
SDK reads it before its first call and refuses, with `IncompatibleServer`, a broker that shares none
of `API_VERSIONS`, saying whether this SDK or the broker is the older one.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["API_VERSIONS", "DISTRIBUTION", "RELEASE"]

DISTRIBUTION = "consentry-brand"
API_VERSIONS = ("1",)  # the versions of the broker's HTTP API (`/v1`) this SDK speaks

try:
    RELEASE = version(DISTRIBUTION)
except PackageNotFoundError:  # imported from a source tree that was never installed
    RELEASE = "0+unknown"
