"""Hostile input against the whole API contract: schemathesis generates valid and invalid requests
for every operation in the OpenAPI document and checks each answer against that document with all
its checks (no 5xx; only documented status codes, content types, headers and bodies; invalid data
refused; valid data accepted; `Allow` on 405s).

It runs in-process against `create_app(runtime=...)` with real credentials for each kind of caller,
so requests reach past authentication, in a world built once for the module (a customer with a
profile and a live grant, a brand with an offer, an auditor); each operation starts from that world
again (a savepoint rolled back after it). Bounded and deterministic: a fixed seed, schemathesis'
deterministic generation, no example database, a few examples per operation.

Left out, and why:
- `/oauth/*` answer RFC 6749 JSON, error redirects or HTML consent pages, not the problem+json
  contract these checks assume; `test_hostile_oauth.py` fuzzes them with hypothesis instead.
- `/portal/*` and `/` are HTML outside the schema (`include_in_schema=False`): schemathesis never
  sees them.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from sqlalchemy import Connection, Engine
from sqlmodel import Session
from support.core import FakeClock, RecordedSleep, bearer, make_settings, sign_up
from support.oauth import ISSUER, OFFER, REDIRECT, BrandCredentials, authorized, brand_token, portal_login

from broker.app import create_app
from broker.db import read_only
from broker.oauth.clients import register_brand
from broker.openapi import generate
from broker.runtime import build_runtime

# Schema-valid requests these operations rightly refuse, because what makes them acceptable is not
# something a schema can say: an opaque cursor the API itself must have issued; a position inside
# the audit log as it stands; a rule across fields (a cash value needs an amount and a currency; the
# login email cannot be removed; a grant is narrowed only to a subset of what it holds that keeps
# the offer's required fields; a password change needs the current password; quiet hours end at
# another time than they start; a contact is reported under its grant, within 30 days, and once
# made; a delivery is rated once confirmed, under its own grant; an intent names registered brands and
# is answered with a listed offer of its category), against a catalogue (ISO 4217
# currencies, IANA time zones) or the world (a password that is not a common one; a webhook host
# that resolves to public addresses only; an address that is not already the account's), or a
# secret only a mailbox holds (an emailed code; with a reset, a new password strong enough); a
# WebAuthn credential an authenticator made, a code an authenticator app shows, exactly one factor;
# an auditor's reasons that are more than blanks.
STATE_DEPENDENT = {
    "422": [
        "listBrandGrants", "getBrandAccessLog", "listOffers", "listWebhooks", "listMyGrants",
        "getMyAccessLog", "listMyReceipts", "getMyValue", "getDeletionReport", "listBrandGrantReceipts",
        "listWebhookDeliveries", "publishOffer", "reviseOffer", "replaceMyProfile", "updateMyProfile",
        "deliverValue", "createCustomer", "createWebhook", "narrowMyGrant", "changeEmail", "listMySessions",
        "listMySecurityActivity", "changeMyPassword", "requestPasswordReset", "requestSignInLink",
        "createSessionWithPasskey", "completeSessionWithSecondFactor", "reauthenticateCurrentSession",
        "registerMyPasskey", "confirmMyTotp", "listDisputes", "decideDispute", "browseDirectory",
        "compareDirectoryOffers", "acceptDirectoryOffer", "setMyPreferences",
        "reportContact", "listMyContacts", "rateBrand", "listBrandRatings", "publishIntent", "answerIntent",
        "holdMyProfile", "releaseMyProfile", "putMyHeldFields", "sealMyGrants", "addMyUnlock",
    ],
    "400": [
        "listAuditEntries", "getInclusionProof", "getConsistencyProof", "getAuditCheckpointAt", "verifyEmail",
        "completeSignInLink",
    ],
    "400 422": ["completePasswordReset"],
}  # fmt: skip
ACCEPTED = ["2XX", "3XX", "401", "403", "404", "409", "429"]

CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 20261123,
        "generation": {"mode": "all", "deterministic": True, "database": "none", "max-examples": 4},
        "checks": {"enabled": True},
        "phases": {"stateful": {"enabled": False}},
        "operations": [
            {
                "include-operation-id": operation_ids,
                "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, *status.split()]}},
            }
            for status, operation_ids in STATE_DEPENDENT.items()
        ],
    }
)
schema = schemathesis.openapi.from_dict(generate(), config=CONFIG).exclude(path_regex=r"^/oauth/")

ALL_SCOPES = "offers:write offers:read grants:read grants:write webhooks:read webhooks:write"


def offline_resolver(host: str, port: int) -> list[str]:
    """Every webhook host resolves to one public address, without asking the network."""
    return ["93.184.215.14"]


@dataclass(frozen=True)
class World:
    """The app under test, the connection its transaction lives on, and a credential for each caller."""

    app: FastAPI
    connection: Connection
    customer: str
    brand: str
    reader: str
    auditor: str
    ids: dict[str, str]
    positive_cases: Iterator[int] = dataclasses.field(default_factory=itertools.count)

    def headers_for(self, path: str) -> dict[str, str]:
        """The Authorization header a legitimate caller of `path` would send."""
        if path.startswith(("/v1/me", "/v1/sessions")):
            return bearer(self.customer)
        if path.startswith("/v1/audit"):
            return bearer(self.auditor)
        if path == "/v1/profile":
            return bearer(self.reader)
        return bearer(self.brand)

    def aim(self, case: schemathesis.Case) -> None:
        """Every other valid case names resources that exist (the grant, its offer, obligation and
        receipt, a webhook), so requests reach past 404 into the domain code; the rest keep their
        generated (unknown) ids."""
        if case.meta is None or not case.meta.generation.mode.is_positive or not case.path_parameters:
            return
        if next(self.positive_cases) % 2 == 0:
            for name in case.path_parameters.keys() & self.ids.keys():
                case.path_parameters[name] = self.ids[name]


def existing_ids(
    client: TestClient, brand: BrandCredentials, token: str, customer: str, reader: str
) -> dict[str, str]:
    """The ids of the resources the world holds, by the path parameter that names them."""
    introspected = client.post("/oauth/introspect", data={"token": reader}, auth=brand.auth()).json()
    grant = client.get(f"/v1/grants/{introspected['grant_id']}", headers=bearer(token)).json()
    [obligation] = client.get(f"/v1/grants/{grant['id']}/value", headers=bearer(token)).json()["items"]
    [receipt] = client.get("/v1/me/receipts", headers=bearer(customer)).json()["items"]
    webhook = client.post("/v1/webhooks", json={"url": "https://grocer.example/hooks"}, headers=bearer(token))
    return {
        "grant_id": grant["id"],
        "offer_id": grant["offer_id"],
        "obligation_id": obligation["id"],
        "receipt_id": receipt["id"],
        "webhook_id": webhook.json()["id"],
    }


@pytest.fixture(scope="module")
def world(engine: Engine, database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Built once, inside one outer transaction that is rolled back when the module ends."""
    connection = engine.connect()
    outer = connection.begin()

    def sessions() -> Session:
        return Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)

    settings_ = make_settings(tmp_path_factory.mktemp("hostile") / "var", database_url)
    built = build_runtime(settings_, engine=engine, clock=FakeClock(), sleep=RecordedSleep())
    webhooks = dataclasses.replace(built.webhooks, resolve=offline_resolver)
    runtime = dataclasses.replace(
        built,
        sessions=sessions,
        read_sessions=lambda: read_only(sessions()),
        read_connections=lambda: nullcontext(connection),
        webhooks=webhooks,
    )
    app = create_app(runtime=runtime)
    with TestClient(app, base_url=ISSUER) as client, sessions() as db:
        registered = register_brand(
            db, name="Green Grocer", redirect_uris=[REDIRECT], public=False, clock=built.clock
        )
        _, auditor = runtime.auditors.create(db, "Independent Audit Ltd")
        db.commit()
        brand = BrandCredentials(registered.brand.client_id, registered.client_secret)
        token = brand_token(client, brand, ALL_SCOPES)
        offer = client.post("/v1/offers", json=OFFER, headers=bearer(token)).json()
        customer = sign_up(client, "ada@example.org")
        profile = {"email": "ada@example.org", "dietary": ["vegan"], "household_size": 3, "given_name": "Ada"}
        assert client.put("/v1/me/profile", json=profile, headers=bearer(customer)).status_code == 200
        assert portal_login(client, "ada@example.org").status_code == 303
        reader = authorized(client, brand, offer)["access_token"]
        ids = existing_ids(client, brand, token, customer, reader)
    yield World(app, connection, customer=customer, brand=token, reader=reader, auditor=auditor, ids=ids)
    outer.rollback()
    connection.close()


@pytest.fixture
def fresh_world(world: World) -> Iterator[World]:
    """The module's world as it was built: what an operation changes is rolled back after it."""
    savepoint = world.connection.begin_nested()
    yield world
    savepoint.rollback()


@pytest.mark.slow  # about a minute for all operations together (40 s of it the coverage phase)
@schema.parametrize()
@settings(
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_every_operation_keeps_its_contract(case: schemathesis.Case, fresh_world: World) -> None:
    fresh_world.aim(case)
    case.call_and_validate(app=fresh_world.app, headers=fresh_world.headers_for(case.path))


def test_the_contract_reaches_past_authentication(fresh_world: World) -> None:
    """The credentials above are real: each kind of caller gets a 200, so the checks test more than 401s."""
    with TestClient(fresh_world.app, base_url=ISSUER) as client:
        grant, webhook = fresh_world.ids["grant_id"], fresh_world.ids["webhook_id"]
        paths = ("/v1/me/profile", "/v1/audit/checkpoint", "/v1/profile", f"/v1/grants/{grant}",
                 f"/v1/me/grants/{grant}", f"/v1/webhooks/{webhook}")  # fmt: skip
        for path in paths:
            response = client.get(path, headers=fresh_world.headers_for(path))
            assert response.status_code == 200, (path, response.text)


def test_a_405_names_every_method_of_the_path(fresh_world: World) -> None:
    """Starlette's own 405 names only the first matching route's methods (found by schemathesis)."""
    with TestClient(fresh_world.app, base_url=ISSUER) as client:
        response = client.post("/v1/me/profile", headers=fresh_world.headers_for("/v1/me/profile"))
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, PATCH, PUT"
    assert response.headers["content-type"] == "application/problem+json"
    assert "use one of: GET, PATCH, PUT" in response.json()["detail"]


def test_every_error_of_the_json_api_is_documented_as_problem_json() -> None:
    spec: dict[str, Any] = generate()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if status[0] in "45" and not path.startswith(("/oauth/", "/.well-known/")):
                    assert list(response["content"]) == ["application/problem+json"], (method, path, status)
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                # OAuth's JSON endpoints (registration) refuse bad bodies with 400, in RFC 7591's terms
                expected = {"400", "413"} if path.startswith("/oauth/") else {"400", "413", "422"}
                assert expected <= set(operation["responses"]), (method, path)
