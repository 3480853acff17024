"""Ratings of brands: one per confirmed delivery and one per grant's end, the words sealed and shown to
the brand only when the customer says so, and the mean in the brand's track record only from five
ratings on."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session
from support.core import FakeClock, bearer, log_in, sign_up
from support.oauth import OFFER, BrandCredentials, brand_token, form_token, portal_login
from support.problems import assert_problem
from support.value import VOUCHER, Brand, logged, value_offer

WORDS = "The courier left it in the rain: Zanzibar-canary"


def _rate(client: TestClient, token: str, grant_id: str, **body: Any) -> Any:
    return client.post(f"/v1/me/grants/{grant_id}/feedback", json=body, headers=bearer(token))


def test_one_rating_per_confirmed_delivery_and_per_end(
    client: TestClient, brand: BrandCredentials, customer: str, db: Session
) -> None:
    side = Brand(client, brand, value_offer(client, brand, when="within_days", days=7))
    obligation = side.deliver(**VOUCHER).json()["id"]
    me = log_in(client, "ada@example.org")
    early = _rate(client, me, side.grant_id, occasion="delivery", obligation_id=obligation, rating=4)
    assert_problem(early, 409, "conflict")
    assert "confirm the delivery first" in early.json()["detail"]
    assert client.post(f"/v1/me/value/{obligation}/confirm", headers=bearer(me)).status_code == 200
    rated = _rate(client, me, side.grant_id, occasion="delivery", obligation_id=obligation, rating=4)
    assert rated.status_code == 201, rated.text
    assert rated.json()["occasion"] == f"delivery:{obligation}"
    again = _rate(client, me, side.grant_id, occasion="delivery", obligation_id=obligation, rating=5)
    assert_problem(again, 409, "conflict")
    live = _rate(client, me, side.grant_id, occasion="grant_end", rating=2)
    assert_problem(live, 409, "conflict")
    assert client.delete(f"/v1/me/grants/{side.grant_id}", headers=bearer(me)).status_code == 204
    assert _rate(client, me, side.grant_id, occasion="grant_end", rating=2).status_code == 201
    assert_problem(_rate(client, me, side.grant_id, occasion="grant_end", rating=2), 409, "conflict")
    for bad, pointer in (({"rating": 0}, "/rating"), ({"rating": 6}, "/rating"), ({"rating": "5"}, "/rating"),
                         ({"text": "x" * 2001}, "/text"), ({"occasion": "whim"}, "/occasion")):  # fmt: skip
        answer = _rate(client, me, side.grant_id, **{"occasion": "grant_end", "rating": 3, **bad})
        assert_problem(answer, 422, "validation", pointer)
    unknown = _rate(client, me, side.grant_id, occasion="delivery", rating=3,
                    obligation_id="00000000-0000-4000-8000-000000000000")  # fmt: skip
    assert_problem(unknown, 422, "validation", "/obligation_id")
    given = [e for e in logged(db, "feedback.") if e["kind"] == "feedback.given"]
    assert len(given) == 2 and all(set(e) <= {"v", "kind", "at", "actor", "request_id"} for e in given), (
        "no brand, subject, grant or rating: the brand cannot match a rating to its grant in its log"
    )
    brand_log = client.get("/v1/access-log", headers=bearer(brand_token(client, brand))).json()["items"]
    assert not [e for e in brand_log if "feedback" in json.dumps(e)]


def test_the_words_are_sealed_and_reach_the_brand_only_when_shared(
    client: TestClient, brand: BrandCredentials, customer: str, db: Session
) -> None:
    kept = Brand(client, brand, value_offer(client, brand, when="within_days", days=7))
    shared = Brand(client, brand, value_offer(client, brand, when="within_days", days=7))
    me = log_in(client, "ada@example.org")
    for side in (kept, shared):
        assert client.delete(f"/v1/me/grants/{side.grant_id}", headers=bearer(me)).status_code == 204
    _rate(client, me, kept.grant_id, occasion="grant_end", rating=2, text="private: Zanzibar-canary")
    _rate(client, me, shared.grant_id, occasion="grant_end", rating=3, text=WORDS, share_text_with_brand=True)
    for table in ("brand_rating", "vault_secret", "audit_entry"):
        dumped = json.dumps([list(map(str, row)) for row in db.execute(text(f"SELECT * FROM {table}"))])  # noqa: S608
        assert "Zanzibar" not in dumped, table
    seen = client.get("/v1/feedback", headers=bearer(brand_token(client, brand)))
    assert seen.status_code == 200, seen.text
    items = seen.json()["items"]
    assert sorted(i["rating"] for i in items) == [2, 3]
    assert [i["text"] for i in items if i["text"]] == [WORDS], "only the shared words"
    assert "grant" not in json.dumps(items).replace("grant_end", ""), "no grant, no customer"
    narrow = bearer(brand_token(client, brand, scope="offers:read"))
    assert_problem(client.get("/v1/feedback", headers=narrow), 403, "insufficient-scope")


def test_the_mean_shows_in_the_track_record_from_five_ratings(
    client: TestClient, brand: BrandCredentials, customer: str, clock: FakeClock
) -> None:
    listed = client.post(
        "/v1/offers", json={**OFFER, "listed": True}, headers=bearer(brand_token(client, brand))
    )
    for n in range(5):
        email = f"rater{n}@example.org"
        token = sign_up(client, email)
        assert portal_login(client, email).status_code == 303
        side = Brand(client, brand, value_offer(client, brand, when="within_days", days=7))
        assert client.delete(f"/v1/me/grants/{side.grant_id}", headers=bearer(token)).status_code == 204
        assert _rate(client, token, side.grant_id, occasion="grant_end", rating=4 + n % 2).status_code == 201
        clock.advance(seconds=61)  # a brand's record is kept a minute
        seen = client.get(
            f"/v1/directory/offers/{listed.json()['id']}", headers=bearer(log_in(client, "ada@example.org"))
        )
        assert seen.status_code == 200, seen.text
        record = seen.json()["record"]
        if n < 4:
            assert record["ratings"] == n + 1 and record["rating_average"] is None
            assert "so far (the mean shows once 5 customers rated)" in record["summary"]
    assert (record["ratings"], record["rating_average"]) == (5, "4.4")
    assert "rated 4.4 of 5 (5 ratings from 5 customers)" in record["summary"]


def test_the_grant_page_asks_for_a_rating_once_it_is_due(
    client: TestClient, brand: BrandCredentials, customer: str
) -> None:
    side = Brand(client, brand, value_offer(client, brand, when="within_days", days=7))
    page = f"/portal/grants/{side.grant_id}"
    assert "You can rate Green Grocer after confirming a delivery" in client.get(page).text
    assert client.delete(f"/v1/me/grants/{side.grant_id}", headers=bearer(customer)).status_code == 204
    assert "Rate Green Grocer" in client.get(page).text
    token = form_token(client, page)
    form = {"csrf_token": token, "occasion": "end", "rating": "5", "words": "Fine", "share": "yes"}
    wrong = client.post(f"{page}/feedback", data={**form, "rating": "9"})
    assert wrong.status_code == 422 and "Choose a rating from 1 to 5" in wrong.text
    assert (
        client.post(f"{page}/feedback", data={k: v for k, v in form.items() if k != "csrf_token"}).status_code
        == 403
    )
    assert client.post(f"{page}/feedback", data=form, follow_redirects=False).status_code == 303
    shown = client.get(page).text
    assert "You rated Green Grocer 5 of 5" in shown and "Rate Green Grocer</button>" not in shown
