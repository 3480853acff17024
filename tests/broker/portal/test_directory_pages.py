"""The portal's offer directory: browse with filters and a sort, compare ticked offers, accept one with
the consent screen's choices (its CSRF token required); a refusal keeps the ticks."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from support.core import FakeClock
from support.oauth import BrandCredentials, brand_token, form_token, publish_offer

PAGE = "/portal/directory"


def listed(client: TestClient, brand: BrandCredentials, **changes: Any) -> dict[str, Any]:
    return publish_offer(client, brand_token(client, brand), listed=True, **changes)


def test_browse_filter_and_page(
    client: TestClient, brand: BrandCredentials, rival: BrandCredentials, customer: str, clock: FakeClock
) -> None:
    kept = listed(client, brand, title="Kept a while")
    deleted = listed(client, rival, title="Deleted at the end", retention_days=0)
    page = client.get(PAGE)
    assert page.status_code == 200
    assert "Kept a while" in page.text and "Deleted at the end" in page.text
    assert "vegan, nut_allergy" not in page.text, "the list shows fields, not values"
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    only = client.get(PAGE, params={"retention": "0", "sort": "fewest_fields"})
    assert "Deleted at the end" in only.text and "Kept a while" not in only.text
    short = listed(client, rival, title="A short month", grant_duration_days=30)
    brief = client.get(PAGE, params={"duration": "30"})
    assert "A short month" in brief.text and "Kept a while" not in brief.text and short["id"] in brief.text
    for broken in ({"purpose": "spying"}, {"sort": "cheapest"}, {"after": "%%%"}, {"retention": "7"},
                   {"duration": "31"}):  # fmt: skip
        assert client.get(PAGE, params=broken).status_code == 400, broken
    for _ in range(20):
        clock.advance(seconds=1)
        listed(client, brand, title="Filler")
    first = client.get(PAGE, params={"retention": "30"})
    assert "More offers" in first.text and "Kept a while" not in first.text, "newest first, 20 a page"
    more = first.text.split('href="/portal/directory?')[-1].split('"')[0].replace("&amp;", "&")
    second = client.get(f"{PAGE}?{more}")
    assert "Kept a while" in second.text and "retention=30" in more
    assert kept["id"] in second.text and deleted["id"] in second.text, "up to 30 days includes 0"


def test_compare_and_accept(
    client: TestClient, brand: BrandCredentials, rival: BrandCredentials, customer: str
) -> None:
    first = listed(client, brand)
    second = listed(client, rival, retention_days=90, recipients=["Courier Ltd"])
    compared = client.get(f"{PAGE}/compare", params={"offer": [first["id"], second["id"]]})
    assert compared.status_code == 200, compared.text
    assert '<tr class="differs">' in compared.text and "Courier Ltd" in compared.text
    assert "keeps your data 60 days longer after the grant ends than Green Grocer." in compared.text
    assert client.get(f"{PAGE}/compare", params={"offer": [first["id"]]}).status_code == 422
    assert client.get(f"{PAGE}/compare", params={"offer": ["nope", first["id"]]}).status_code == 400

    offer_page = client.get(f"{PAGE}/offers/{first['id']}")
    assert "vegan, nut_allergy" in offer_page.text, "the offer's page shows what would go"
    token = form_token(client, f"{PAGE}/offers/{first['id']}")
    path = f"{PAGE}/offers/{first['id']}"
    refused = client.post(path, data={"csrf_token": token, "fields": ["household_size"]})
    assert refused.status_code == 422 and "explicit agreement" in refused.text
    assert re.search(r'id="field-household_size"[^>]*checked', refused.text), "the ticks are kept"
    assert client.post(path, data={"fields": ["household_size"], "special_consent": "yes"}).status_code == 403
    long_name = client.post(path, data={"csrf_token": token, "fields": ["x" * 100], "special_consent": "yes"})
    assert long_name.status_code == 422 and "Choose among this offer" in long_name.text
    made = client.post(
        path,
        data={"csrf_token": token, "fields": ["household_size"], "special_consent": "yes"},
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    grant_page = client.get(made.headers["location"])
    assert grant_page.status_code == 200 and "Green Grocer" in grant_page.text
    assert "in the offer directory; Green Grocer may still decline it until" in grant_page.text
    assert client.get(f"{PAGE}/offers/00000000-0000-4000-8000-000000000000").status_code == 404


def test_the_directory_needs_a_login(client: TestClient, brand: BrandCredentials) -> None:
    listed(client, brand)
    answer = client.get(PAGE, params={"sort": "value"}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/portal/login?next=")
