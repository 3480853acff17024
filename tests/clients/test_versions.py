"""One version for every distribution, and API versions that clients check before they trust an answer.

The repository's `VERSION` is the release of the server, the brand SDK, the auditor and the example
app (each client folder links it); the server names the HTTP API versions it serves in its metadata
and on every answer, and each client refuses a server that serves none of its own, saying which of
the two to upgrade.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from datetime import UTC, datetime, timedelta
from importlib.metadata import requires, version
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from packaging.requirements import Requirement
from support import served
from support.dists import PROJECTS, ROOT, VERSION
from typer.testing import CliRunner

import clients.auditor
import clients.brand
from broker.versions import API_VERSION_HEADER, API_VERSIONS, RELEASE
from clients.auditor import AuditorClient, HTTPProblem, IncompatibleServer
from clients.auditor.cli import app as audit_app
from clients.brand import ConsentryClient, GrantSession, TokenSet
from clients.brand import IncompatibleServer as SDKIncompatibleServer

ISSUER = "https://consentry.example"


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_every_distribution_takes_its_version_from_the_one_version_file(name: str) -> None:
    folder = PROJECTS[name]
    project = tomllib.loads((folder / "pyproject.toml").read_text())
    assert project["project"]["name"] == name
    assert "version" not in project["project"] and project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"file": "VERSION"}
    assert (folder / "VERSION").resolve() == ROOT / "VERSION"
    assert version(name) == VERSION, f"{name} is installed at another version: reinstall (make test does)"


def test_the_release_each_package_reports_is_the_version_file() -> None:
    assert RELEASE == clients.brand.__version__ == VERSION
    assert clients.auditor.API_VERSIONS == clients.brand.API_VERSIONS == API_VERSIONS


def test_the_server_depends_on_the_auditor_it_is_released_with_and_on_no_other_client() -> None:
    needs = {Requirement(line).name: Requirement(line) for line in requires("consentry") or []}
    assert VERSION in needs["consentry-audit"].specifier
    assert "consentry-brand" not in needs and "consentry-example-grocery" not in needs
    brand = [Requirement(line) for line in requires("consentry-brand") or []]
    assert sorted(r.name for r in brand if r.marker is None) == ["httpx", "pydantic"]
    assert [r.name for r in brand if r.marker is not None] == ["joserfc"]  # the self-custody extra
    audit = {Requirement(line).name for line in requires("consentry-audit") or []}
    assert audit == {"httpx", "cryptography", "pydantic", "typer", "rich", "joserfc"}
    example = {
        Requirement(line).name: Requirement(line) for line in requires("consentry-example-grocery") or []
    }
    assert VERSION in example["consentry-brand"].specifier
    assert not set(example) & {"consentry", "consentry-audit"}


def test_each_command_prints_its_version() -> None:
    consentry = Path(sys.executable).parent / "consentry"
    printed = subprocess.run([consentry, "--version"], check=True, capture_output=True, text=True).stdout
    assert printed == f"consentry {VERSION} (serves Consentry API 1)\n"
    printed = CliRunner().invoke(audit_app, ["--version"]).stdout
    assert printed == f"consentry-audit {VERSION} (speaks Consentry API 1)\n"
    sdk = [sys.executable, "-m", "clients.brand", "--version"]
    printed = subprocess.run(sdk, check=True, capture_output=True, text=True).stdout
    assert printed == f"consentry-brand {VERSION} (speaks Consentry API 1)\n"


def test_the_server_names_its_api_versions_in_its_metadata_and_on_every_answer(client: TestClient) -> None:
    for path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
        answer = client.get(path)
        assert answer.json()["consentry_api_versions"] == ["1"]
        assert answer.headers[API_VERSION_HEADER] == "1"
    for path in ("/v1/offers", "/v1/audit/checkpoint", "/portal/login", "/no/such/page", "/healthz"):
        assert client.get(path).headers[API_VERSION_HEADER] == "1", path


def _metadata(versions: list[str] | None) -> httpx.MockTransport:
    body: dict[str, object] = {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/oauth/authorize",
        "token_endpoint": f"{ISSUER}/oauth/token",
        "code_challenge_methods_supported": ["S256"],
    }
    if versions is not None:
        body["consentry_api_versions"] = versions
    return httpx.MockTransport(lambda request: httpx.Response(200, json=body))


@pytest.mark.parametrize(
    ("versions", "advice"),
    [
        (None, "does not name the API versions it serves (no consentry_api_versions in its metadata)"),
        ([], "does not name the API versions it serves"),
        (["2"], "serves Consentry API 2 only; consentry-brand"),
        (["2", "10"], "upgrade the SDK (pip install --upgrade consentry-brand)"),
        (["0"], "the broker is older than this SDK: ask its operator to upgrade it"),
    ],
)
def test_the_sdk_refuses_a_broker_that_serves_none_of_its_api_versions(
    versions: list[str] | None, advice: str
) -> None:
    sdk = ConsentryClient(ISSUER, client_id="brd_1", transport=_metadata(versions))
    with sdk, pytest.raises(SDKIncompatibleServer, match="speaks Consentry API 1") as refused:
        sdk.discover()
    assert advice in str(refused.value)
    assert refused.value.server_versions == (versions or []) and refused.value.sdk_versions == ["1"]


@pytest.mark.parametrize(("ours", "theirs", "advice"), [("9", "10", "upgrade"), ("10", "9", "older")])
def test_versions_are_ordered_as_numbers_not_as_text(
    monkeypatch: pytest.MonkeyPatch, ours: str, theirs: str, advice: str
) -> None:
    monkeypatch.setattr("clients.brand.protocol.API_VERSIONS", (ours,))
    monkeypatch.setattr("clients.auditor.api.API_VERSIONS", (ours,))
    sdk = ConsentryClient(ISSUER, client_id="brd_1", transport=_metadata([theirs]))
    with sdk, pytest.raises(SDKIncompatibleServer, match=advice):
        sdk.discover()
    api = _auditor(httpx.Response(200, text="k\n", headers={API_VERSION_HEADER: theirs}))
    with api, pytest.raises(IncompatibleServer, match=advice):
        api.verifier_key()


@pytest.mark.parametrize("header", ["\u00b2", "", " , "])
def test_a_header_naming_no_usable_version_is_refused_cleanly(header: str) -> None:
    """ "²" passes str.isdigit() but not int(): it must be an incompatible server, not a crash."""
    answer = httpx.Response(
        200, text="k\n", headers=[(API_VERSION_HEADER.encode(), header.encode("latin-1"))]
    )
    api = _auditor(answer)
    with api, pytest.raises(IncompatibleServer, match="speaks Consentry API 1"):
        api.verifier_key()


def test_the_sdk_checks_the_api_versions_before_a_call_with_a_token_it_already_holds() -> None:
    """A session restored from storage needs no token endpoint, yet the broker must be checked first."""
    seen: list[str] = []

    def broker(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return _metadata(["7"]).handle_request(request)

    tokens = TokenSet(access_token="e30.e30.sig", expires_at=datetime.now(UTC) + timedelta(hours=1))
    sdk = ConsentryClient(ISSUER, client_id="brd_1", transport=httpx.MockTransport(broker))
    with sdk, pytest.raises(SDKIncompatibleServer, match="serves Consentry API 7 only"):
        sdk.read_profile(GrantSession(tokens))
    assert seen == ["/.well-known/oauth-authorization-server"]


def test_the_sdk_talks_to_a_broker_that_also_serves_newer_versions() -> None:
    with ConsentryClient(ISSUER, client_id="brd_1", transport=_metadata(["1", "2"])) as sdk:
        assert sdk.discover().consentry_api_versions == ["1", "2"]


def _auditor(answer: httpx.Response) -> AuditorClient:
    return AuditorClient(ISSUER, "token", transport=httpx.MockTransport(lambda request: answer))


@pytest.mark.parametrize(
    ("header", "advice"),
    [
        (None, "does not say which Consentry API it serves (no version in a Consentry-API-Version header)"),
        ("2", "serves Consentry API 2 only; consentry-audit"),
        ("2, 3", "upgrade it (pip install --upgrade consentry-audit)"),
        ("0", "the server is older than this tool"),
    ],
)
def test_the_auditor_refuses_an_answer_from_a_server_of_other_api_versions(
    header: str | None, advice: str
) -> None:
    headers = {} if header is None else {API_VERSION_HEADER: header}
    api = _auditor(httpx.Response(200, text="log+01020304+AQ==\n", headers=headers))
    with api, pytest.raises(IncompatibleServer, match=f"{ISSUER}.*speaks Consentry API 1") as refused:
        api.verifier_key()
    assert advice in str(refused.value)


def test_an_error_answer_without_the_header_is_reported_as_the_error_it_is() -> None:
    """A proxy in front of the server (a 502 page) names no API version: that is not an old server."""
    proxy = _auditor(httpx.Response(502, text="<html>bad gateway</html>"))
    with proxy, pytest.raises(HTTPProblem, match="502"):
        proxy.verifier_key()
    other = _auditor(httpx.Response(401, json={}, headers={API_VERSION_HEADER: "7"}))
    with other, pytest.raises(IncompatibleServer, match="serves Consentry API 7 only"):
        other.verifier_key()


def test_the_auditor_cli_stops_with_exit_2_on_an_incompatible_server() -> None:
    newer = served.consentry(
        lambda request: httpx.Response(200, text="k\n", headers={API_VERSION_HEADER: "2"})
    )
    result = CliRunner().invoke(audit_app, ["verify", "--url", ISSUER, "--token", "t"], obj=newer)
    assert result.exit_code == 2
    assert "serves Consentry API 2 only" in result.stderr and "pip install --upgrade" in result.stderr
