"""Intents: brands of the intent's category see it under a random handle and never who; they answer
with a listed offer; accepting one in the directory tells that brand alone; expired intents go."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session
from support.core import FakeClock, bearer, log_in
from support.oauth import REDIRECT, BrandCredentials, brand_token, form_token, publish_offer
from support.problems import assert_problem

from broker.oauth.clients import register_brand
from broker.runtime import Runtime

MINE = "/v1/me/intents"
MOVING: dict[str, Any] = {"kind": "moving_home", "horizon": "1_to_3_months", "budget_band": "500_to_2000",
                          "share_age_band": True, "days": 30}  # fmt: skip


def _listed(client: TestClient, brand: BrandCredentials, *categories: str, **changes: Any) -> dict[str, Any]:
    return publish_offer(
        client, brand_token(client, brand), listed=True, categories=list(categories), **changes
    )


def _seen(client: TestClient, brand: BrandCredentials) -> list[dict[str, Any]]:
    answer = client.get("/v1/intents", headers=bearer(brand_token(client, brand)))
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


@pytest.fixture
def movers(runtime: Runtime, db: Session) -> BrandCredentials:
    made = register_brand(db, name="Mover Vans", redirect_uris=[REDIRECT], public=False, clock=runtime.clock)
    db.commit()
    return BrandCredentials(made.brand.client_id, made.client_secret)


def test_brands_of_its_category_see_it_and_never_who(
    client: TestClient, brand: BrandCredentials, rival: BrandCredentials, movers: BrandCredentials,
    customer: str, db: Session,
) -> None:  # fmt: skip
    _listed(client, brand, "home", "food")
    _listed(client, rival, "food")
    publish_offer(client, brand_token(client, movers), categories=["home"])  # not listed
    made = client.post(MINE, json=MOVING, headers=bearer(customer))
    assert made.status_code == 201, made.text
    (seen,) = _seen(client, brand)
    assert seen == {"handle": made.json()["handle"], "kind": "moving_home", "category": "home",
                    "horizon": "1_to_3_months", "budget_band": "500_to_2000", "region": None,
                    "age_band": made.json()["age_band"], "expires_at": made.json()["expires_at"],
                    "answered": False}  # fmt: skip
    assert made.json()["age_band"] is not None and seen["region"] is None, "only what was shared"
    assert _seen(client, rival) == [] and _seen(client, movers) == [], "another category; not listed"
    dumped = json.dumps([list(map(str, row)) for row in db.execute(text("SELECT * FROM intent"))])
    customer_id = str(client.get("/v1/me/grants", headers=bearer(customer)).json().get("customer_id", ""))
    # a word, not a substring: the random handle and the blind index may hold "ada" (hex, base64)
    assert not re.search(r"\bada\b", dumped, re.IGNORECASE)
    assert not customer_id or customer_id not in dumped


def test_handles_name_nothing_and_tie_nothing_together(
    client: TestClient, brand: BrandCredentials, customer: str
) -> None:
    _listed(client, brand, "home", "travel")
    first = client.post(MINE, json=MOVING, headers=bearer(customer)).json()
    second = client.post(
        MINE, json={"kind": "holiday", "horizon": "within_a_month"}, headers=bearer(customer)
    ).json()
    handles = {item["handle"] for item in _seen(client, brand)}
    assert handles == {first["handle"], second["handle"]} and len(handles) == 2
    assert all(len(h) > 20 and h.startswith("int_") for h in handles)
    assert not any(first["id"] in h or second["id"] in h for h in handles), "not derived from the id"


def test_answers_compared_and_one_accepted_tells_that_brand_alone(
    client: TestClient, brand: BrandCredentials, rival: BrandCredentials, customer: str, db: Session
) -> None:
    ours = _listed(client, brand, "home", title="Fresh start box")
    theirs = _listed(client, rival, "home", title="Moving-day meals")
    food_only = _listed(client, rival, "food", title="Just food")
    made = client.post(MINE, json=MOVING, headers=bearer(customer)).json()
    handle = made["handle"]

    def answer(who: BrandCredentials, offer_id: str, target: str = handle) -> Any:
        token = brand_token(client, who)
        return client.post(
            f"/v1/intents/{target}/answers", json={"offer_id": offer_id}, headers=bearer(token)
        )

    assert answer(brand, ours["id"]).status_code == 201
    assert_problem(answer(brand, ours["id"]), 409, "conflict")
    assert_problem(answer(rival, food_only["id"]), 422, "validation", "/offer_id")
    assert_problem(answer(rival, ours["id"]), 422, "validation", "/offer_id")
    assert_problem(answer(rival, theirs["id"], "int_nothing"), 404, "not-found")
    assert answer(rival, theirs["id"]).status_code == 201
    assert [s["answered"] for s in _seen(client, brand)] == [True]
    shown = client.get(f"{MINE}/{made['id']}", headers=bearer(customer)).json()
    assert sorted(o["title"] for o in shown["answers"]) == ["Fresh start box", "Moving-day meals"]
    assert all(o["record"] for o in shown["answers"]), "shown as the directory shows offers"
    choice = {"special_category_consent": True}
    accepted = client.post(f"/v1/directory/offers/{ours['id']}/grant", json=choice, headers=bearer(customer))
    assert accepted.status_code == 201, accepted.text
    as_brand = client.get("/v1/grants", headers=bearer(brand_token(client, brand))).json()["items"]
    as_rival = client.get("/v1/grants", headers=bearer(brand_token(client, rival))).json()["items"]
    assert len(as_brand) == 1 and as_rival == [], "only the chosen brand learns who"


def test_limits_and_bad_intents(
    client: TestClient, brand: BrandCredentials, rival: BrandCredentials, customer: str
) -> None:
    _listed(client, brand, "home")
    _listed(client, rival, "home")
    for bad, pointer in (
        ({"kind": "new_yacht"}, "/kind"),
        ({"days": 91}, "/days"),
        ({"days": 0}, "/days"),
        ({"share_region": "yes"}, "/share_region"),
        ({"only_brands": ["brd_nobody"]}, "/only_brands"),
    ):
        assert_problem(
            client.post(MINE, json={**MOVING, **bad}, headers=bearer(customer)), 422, "validation", pointer
        )
    only = client.post(
        MINE, json={**MOVING, "only_brands": [rival.client_id]}, headers=bearer(customer)
    ).json()
    assert [s["handle"] for s in _seen(client, rival)] == [only["handle"]] and _seen(client, brand) == []
    for _ in range(4):
        assert client.post(MINE, json=MOVING, headers=bearer(customer)).status_code == 201
    assert_problem(client.post(MINE, json=MOVING, headers=bearer(customer)), 429, "too-many-attempts")
    assert client.delete(f"{MINE}/{only['id']}", headers=bearer(customer)).status_code == 204
    assert_problem(client.get(f"{MINE}/{only['id']}", headers=bearer(customer)), 404, "not-found")
    assert client.post(MINE, json=MOVING, headers=bearer(customer)).status_code == 201


def test_expired_intents_are_deleted_with_their_answers(
    client: TestClient,
    runtime: Runtime,
    brand: BrandCredentials,
    customer: str,
    clock: FakeClock,
    db: Session,
) -> None:
    ours = _listed(client, brand, "home")
    made = client.post(MINE, json={**MOVING, "days": 1}, headers=bearer(customer)).json()
    token = brand_token(client, brand)
    assert client.post(f"/v1/intents/{made['handle']}/answers", json={"offer_id": ours["id"]},
                       headers=bearer(token)).status_code == 201  # fmt: skip
    clock.advance(days=1, seconds=1)
    assert _seen(client, brand) == [], "past its time: gone from view at once"
    runtime.lifecycle.sweep(runtime.sessions)
    assert db.execute(text("SELECT count(*) FROM intent")).scalar() == 0
    assert db.execute(text("SELECT count(*) FROM intent_answer")).scalar() == 0
    assert client.get(MINE, headers=bearer(log_in(client, "ada@example.org"))).json() == []


def test_the_portal_publishes_an_intent_and_shows_its_answers(
    client: TestClient, brand: BrandCredentials, rival: BrandCredentials, customer: str
) -> None:
    ours = _listed(client, brand, "home", title="Fresh start box")
    theirs = _listed(client, rival, "home", title="Moving-day meals")
    token = form_token(client, "/portal/intents")
    form = {"csrf_token": token, "kind": "moving_home", "horizon": "within_a_month", "share_age_band": "yes"}
    assert client.post("/portal/intents", data={**form, "kind": "a yacht"}).status_code == 422
    assert (
        client.post("/portal/intents", data={k: v for k, v in form.items() if k != "csrf_token"}).status_code
        == 403
    )
    made = client.post("/portal/intents", data=form, follow_redirects=False)
    assert made.status_code == 303
    (seen,) = _seen(client, brand)
    for who, offer in ((brand, ours), (rival, theirs)):
        client.post(f"/v1/intents/{seen['handle']}/answers", json={"offer_id": offer["id"]},
                    headers=bearer(brand_token(client, who)))  # fmt: skip
    page = client.get(made.headers["location"])
    assert page.status_code == 200 and "2 answers" in page.text
    assert "Fresh start box" in page.text and "Moving-day meals" in page.text
    compare = page.text.split('href="/portal/directory/compare?')[1].split('"')[0].split("&amp;")
    assert sorted(compare) == sorted([f"offer={ours['id']}", f"offer={theirs['id']}"]), (
        "both answers compared"
    )
    assert (
        "1 answer" not in client.get("/portal/intents").text
        and "2 answers" in client.get("/portal/intents").text
    )
