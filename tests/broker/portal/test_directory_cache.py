"""The directory's list page is rendered once for every customer and kept in each process while no
listing and no brand changed: each customer still sees only their own "not filled in" notes, and a
withdrawn, revised or renamed offer or brand is gone from the next page, in this process and in
another one."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select, update
from support.core import PG_URL, FakeClock, bearer, sign_up
from support.oauth import REDIRECT, BrandCredentials, brand_token, portal_login, publish_offer
from support.serving import listening, served_alone, wait_for

from broker.accounts.models import Brand
from broker.accounts.models import Brand as BrandRow
from broker.consent.directory import DirectoryFilters, DirectorySort
from broker.oauth.clients import register_brand
from broker.runtime import Runtime
from broker.usecases.directory import Directory

PAGE = "/portal/directory"
NOT_FILLED = "(you have not filled it in)"


def _listed(client: TestClient, brand: BrandCredentials, **changes: Any) -> dict[str, Any]:
    return publish_offer(client, brand_token(client, brand), listed=True, **changes)


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every time a list page is built rather than taken from the cache."""
    calls: list[Any] = []
    anyones_page = Directory.anyones_page

    def counted(self: Directory, *args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return anyones_page(self, *args, **kwargs)

    monkeypatch.setattr(Directory, "anyones_page", counted)
    return calls


def test_one_page_for_everyone_with_each_customers_own_notes(
    client: TestClient,
    runtime: Runtime,
    brand: BrandCredentials,
    customer: str,
    built: list[Any],
    clock: FakeClock,
) -> None:
    listening(runtime)
    _listed(client, brand, required_fields=["email"], optional_fields=["dietary", "household_size"])
    ada = client.get(PAGE)  # Ada has filled in all three
    assert ada.status_code == 200 and NOT_FILLED not in ada.text
    assert "vegan" not in ada.text, "the list shows which fields, never a value"
    bob = TestClient(client.app, base_url=str(client.base_url))
    token = sign_up(bob, "bob@example.org")
    assert (
        bob.put("/v1/me/profile", json={"email": "bob@example.org"}, headers=bearer(token)).status_code == 200
    )
    assert portal_login(bob, "bob@example.org").status_code == 303
    page = bob.get(PAGE)
    assert page.status_code == 200 and page.text.count(NOT_FILLED) == 2, "Bob has filled in his email only"
    assert client.get(PAGE).text == ada.text, "Ada's page is still hers"
    assert len(built) == 1, "built once, then served to both from the cache"
    assert "csrf_token" not in page.text, "a shared page carries no form token"
    assert client.get(PAGE, params={"sort": "value"}).status_code == 200 and len(built) == 2
    clock.advance(seconds=60)  # as long as a brand's record is kept, no longer
    assert client.get(PAGE).text == ada.text and len(built) == 3


def test_a_cached_page_never_outlives_a_change_of_a_listing_or_a_brand(
    client: TestClient, runtime: Runtime, brand: BrandCredentials, customer: str, db: Session
) -> None:
    listening(runtime)
    token = brand_token(client, brand)
    leaving = _listed(client, brand, title="Here today")
    changing = _listed(client, brand, title="Old terms")
    assert "Here today" in client.get(PAGE).text  # kept now
    assert client.delete(f"/v1/offers/{leaving['id']}", headers=bearer(token)).status_code in (200, 204)
    page = client.get(PAGE).text
    assert "Here today" not in page and "Old terms" in page, "a withdrawn offer leaves at once"
    revised = client.put(f"/v1/offers/{changing['id']}", json={**_draft(changing), "title": "New terms"},
                         headers=bearer(token))  # fmt: skip
    assert revised.status_code == 201, revised.text
    page = client.get(PAGE).text
    assert "New terms" in page and "Old terms" not in page, "a revised offer shows its new version at once"
    db.exec(update(Brand).where(col(Brand.client_id) == brand.client_id).values(name="Green Grocer & Sons"))
    db.commit()
    assert "Green Grocer &amp; Sons" in client.get(PAGE).text, "a renamed brand at once"


def _draft(offer: dict[str, Any]) -> dict[str, Any]:
    keys = ("title", "description", "required_fields", "optional_fields", "purpose", "purpose_explanation",
            "grant_duration_days", "retention_days", "recipients", "value", "listed")  # fmt: skip
    return {key: offer[key] for key in keys if key in offer}


def test_no_text_of_a_brand_can_forge_a_customers_part_of_the_page(
    client: TestClient, runtime: Runtime, brand: BrandCredentials, customer: str
) -> None:
    listening(runtime)
    _listed(client, brand, title="<!--unfilled--> Free", description="<!--unfilled-->email<!--unfilled-->")
    for _ in range(2):  # built, then from the cache
        page = client.get(PAGE)
        assert page.status_code == 200
        assert "&lt;!--unfilled--&gt; Free" in page.text and "<!--unfilled-->" not in page.text


@pytest.fixture
def served(tmp_path: Path, fresh_database_url: str) -> Iterator[tuple[TestClient, Runtime, dict[str, str]]]:
    """The app on a database of its own that another process changes too, and that one's environment."""
    with served_alone(tmp_path / "var", fresh_database_url) as found:
        yield found


_WITHDRAW = """
import sys
from uuid import UUID
from broker.oauth.clients import find_brand
from broker.runtime import build_runtime
from broker.settings import Settings

runtime = build_runtime(Settings())
with runtime.sessions() as db:
    runtime.offers.withdraw(db, find_brand(db, sys.argv[1]), UUID(sys.argv[2]))
    db.commit()
runtime.dispose()
"""


def test_an_offer_withdrawn_by_another_process_leaves_the_page(
    served: tuple[TestClient, Runtime, dict[str, str]],
) -> None:
    """SQLite: at once (the counter beside the database); PostgreSQL: once the notification arrives."""
    client, runtime, env = served
    with runtime.sessions() as db:
        registered = register_brand(db, name="Elsewhere", redirect_uris=[REDIRECT], public=False,
                                    clock=runtime.clock)  # fmt: skip
        db.commit()
    brand = BrandCredentials(registered.brand.client_id, registered.client_secret)
    offer = _listed(client, brand, title="Withdrawn elsewhere")
    sign_up(client, "ada@example.org")
    assert portal_login(client, "ada@example.org").status_code == 303
    assert "Withdrawn elsewhere" in client.get(PAGE).text  # kept now
    subprocess.run([sys.executable, "-c", _WITHDRAW, brand.client_id, offer["id"]], env=env,
                   capture_output=True, text=True, check=True, timeout=120)  # fmt: skip
    if PG_URL is None:
        assert "Withdrawn elsewhere" not in client.get(PAGE).text
    else:
        wait_for(lambda: "Withdrawn elsewhere" not in client.get(PAGE).text, "the offer gone")


def test_what_a_transaction_read_before_a_change_is_not_kept_as_current(
    served: tuple[TestClient, Runtime, dict[str, str]],
) -> None:
    """A reader whose transaction began before a brand was renamed reads the old name (on SQLite, its
    snapshot); what it keeps is stamped as of its beginning, so the next reader reads afresh."""
    client, runtime, _ = served
    with runtime.sessions() as db:
        registered = register_brand(db, name="Old Name", redirect_uris=[REDIRECT], public=False,
                                    clock=runtime.clock)  # fmt: skip
        db.commit()
    _listed(client, BrandCredentials(registered.brand.client_id, registered.client_secret))
    anyone = DirectoryFilters()
    with runtime.read_sessions() as early:
        early.exec(select(BrandRow.name)).all()  # its transaction (and snapshot) begins here
        with runtime.sessions() as db:
            db.exec(update(BrandRow).where(col(BrandRow.id) == registered.brand.id).values(name="New Name"))
            db.commit()
        runtime.directory.anyones_page(early, anyone, sort=DirectorySort.NEWEST, cursor=None, limit=20)
    with runtime.read_sessions() as later:
        found = runtime.directory.anyones_page(
            later, anyone, sort=DirectorySort.NEWEST, cursor=None, limit=20
        )
    (card,) = found.items
    assert card.brand == "New Name"
