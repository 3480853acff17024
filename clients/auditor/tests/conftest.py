"""The installed consentry-audit wheel against a live server.

`tests/dists` (run by `make test`) installs the wheel alone, with pytest, in a fresh virtual
environment, starts a server from the server's own environment, lets a brand and a customer make a
log worth checking there, and runs these tests with the server and an auditor token in the
environment: CONSENTRY_URL and CONSENTRY_AUDIT_TOKEN (the name `consentry-audit` reads it from).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Server:
    url: str
    token: str


@pytest.fixture(scope="session")
def server() -> Server:
    url, token = os.environ.get("CONSENTRY_URL"), os.environ.get("CONSENTRY_AUDIT_TOKEN")
    if not url or not token:
        pytest.fail(
            "run by tests/dists against a live server (`make test`): CONSENTRY_URL or _AUDIT_TOKEN unset"
        )
    return Server(url, token)
