"""One table of problem types: every type a class in `broker.errors`, each slug unique, each in README's
Errors table and on the operations of the OpenAPI document that answer it; and the check that keeps the
document truthful (`support.problems`) catches an undocumented answer."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.requests import Request
from support.problems import Ledger

import broker
from broker.api import contract
from broker.errors import (
    ANSWERED_ANYWHERE,
    PROBLEM_BASE,
    PROBLEM_TYPES,
    BrokerError,
    EmailTaken,
    EmailTakenUncounted,
    Forbidden,
    GrantRevoked,
    Internal,
    NotAuthenticated,
    NotFound,
)
from broker.openapi import generate
from broker.web.problems import problem_response

ROOT = Path(__file__).resolve().parents[3]


def every_broker_error() -> set[type[BrokerError]]:
    """Every subclass of BrokerError the broker defines, wherever it is (all modules imported)."""
    for module in pkgutil.walk_packages(broker.__path__, "broker."):
        if module.name != "broker.asgi":  # builds an app from the environment on import
            importlib.import_module(module.name)
    found: set[type[BrokerError]] = set()
    pending = [BrokerError]
    while pending:
        for sub in pending.pop().__subclasses__():
            found.add(sub)
            pending.append(sub)
    return found


def readme_errors_table() -> list[tuple[list[str], int]]:
    """The rows of README's Errors table: the slugs in its first column, its status."""
    section = (ROOT / "README.md").read_text().split("### Errors\n", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    table = []
    for row in rows:
        types, status = (cell.strip() for cell in row.strip("|").split("|")[:2])
        table.append((re.findall(r"`([a-z0-9-]+)`", types), int(status)))
    return table


def test_every_slug_is_unique_and_every_type_is_its_own_class() -> None:
    slugs = [kind.slug for kind in PROBLEM_TYPES]
    assert len(slugs) == len(set(slugs)), sorted(s for s in slugs if slugs.count(s) > 1)
    assert all("slug" in vars(kind) for kind in PROBLEM_TYPES)
    assert all(kind.type_uri == PROBLEM_BASE + kind.slug for kind in PROBLEM_TYPES)
    assert set(ANSWERED_ANYWHERE) <= set(PROBLEM_TYPES)


def test_every_problem_class_is_in_the_one_table() -> None:
    """A class declaring a slug anywhere in broker is in PROBLEM_TYPES; the others (groups to catch,
    variants of a type) live in broker.errors too."""
    for kind in every_broker_error():
        if "slug" in vars(kind):
            assert kind in PROBLEM_TYPES, f"{kind.__module__}.{kind.__name__} is not in PROBLEM_TYPES"
        else:
            assert kind.__module__ == "broker.errors", f"{kind.__module__}.{kind.__name__}"


def test_a_variant_answers_its_types_slug_and_a_group_cannot_be_raised() -> None:
    assert EmailTakenUncounted.type_uri == EmailTaken.type_uri
    assert EmailTaken.keeps_changes and not EmailTakenUncounted.keeps_changes
    with pytest.raises(TypeError, match="raise one of them"):
        Forbidden("which problem?")


def test_every_type_is_in_the_readmes_errors_table_once_with_its_status() -> None:
    table = readme_errors_table()
    listed = [slug for slugs, _ in table for slug in slugs]
    assert sorted(listed) == sorted(kind.slug for kind in PROBLEM_TYPES)
    status = {kind.slug: kind.status for kind in PROBLEM_TYPES}
    for slugs, row_status in table:
        assert {status[slug] for slug in slugs} == {row_status}, slugs


def test_every_type_is_documented_on_an_operation_or_answered_anywhere() -> None:
    spec = json.loads((ROOT / "openapi" / "openapi.json").read_text())
    documented = {
        uri
        for item in spec["paths"].values()
        for operation in item.values()
        for response in operation["responses"].values()
        for uri in contract.documented_types(response)
    }
    anywhere = {kind.type_uri for kind in ANSWERED_ANYWHERE}
    assert [kind.slug for kind in PROBLEM_TYPES if kind.type_uri not in documented | anywhere] == []
    described = spec["components"]["schemas"]["Problem"]["description"]
    assert all(f"`{kind.slug}` ({kind.status})" in described for kind in ANSWERED_ANYWHERE)


def test_every_error_response_of_the_json_api_lists_its_types_by_status() -> None:
    spec = generate()
    for path, item in spec["paths"].items():
        if path.startswith(("/oauth/", "/.well-known/")):
            continue
        for method, operation in item.items():
            for code, response in operation["responses"].items():
                if code[0] not in "45":
                    continue
                uris = contract.documented_types(response)
                assert uris, f"{method} {path} {code}"
                kinds = {kind.type_uri: kind for kind in PROBLEM_TYPES}
                assert {kinds[uri].status for uri in uris} == {int(code)}, f"{method} {path} {code}"


def test_documenting_problems_twice_changes_nothing(client: TestClient) -> None:
    first = json.dumps(client.app.openapi(), sort_keys=True)  # type: ignore[attr-defined]
    assert json.dumps(client.app.openapi(), sort_keys=True) == first  # type: ignore[attr-defined]


def test_a_route_declaring_a_type_of_another_status_is_refused() -> None:
    spec: dict[str, Any] = {
        "paths": {"/v1/x": {"get": {"responses": {"404": contract.problems("gone", GrantRevoked)}}}}
    }
    with pytest.raises(ValueError, match="grant-revoked is a 403, documented as a 404"):
        contract.document_problems(spec)
    spec = {"paths": {"/v1/x": {"get": {"responses": {"404": {"description": "gone"}}}}}}
    with pytest.raises(ValueError, match="its 404 names no problem type"):
        contract.document_problems(spec)


def _answer(ledger: Ledger, method: str, path: str, error: BrokerError) -> None:
    route = APIRoute(path, lambda: None, methods=[method])
    request = Request({"type": "http", "method": method, "path": path, "headers": [], "route": route})
    ledger.record(request, problem_response(error))


def test_the_ledger_fails_a_test_whose_operation_answered_an_undocumented_type() -> None:
    ledger = Ledger()
    ledger._documented = {("GET", "/v1/me/profile"): {401: {NotAuthenticated.type_uri}}}
    _answer(ledger, "GET", "/v1/me/profile", NotAuthenticated("log in"))
    _answer(ledger, "GET", "/v1/me/profile", Internal("oops"))  # answered anywhere
    _answer(ledger, "GET", "/v1/elsewhere", NotFound("not a documented operation"))
    ledger.check()
    _answer(ledger, "GET", "/v1/me/profile", NotFound("nothing here"))
    with pytest.raises(pytest.fail.Exception, match=r"GET /v1/me/profile answered 404 .*/not-found"):
        ledger.check()
    ledger.check()  # reported once


def test_an_unparsable_body_is_a_malformed_request(client: TestClient) -> None:
    response = client.post(
        "/v1/customers", content=b'{"email": "a\xff"}', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["type"], body["title"]) == (PROBLEM_BASE + "malformed-request", "Malformed request")


def test_an_unknown_route_has_the_title_of_every_not_found(client: TestClient) -> None:
    body = client.get("/v1/nothing-here").json()
    assert (body["type"], body["title"]) == (NotFound.type_uri, NotFound.title)
