"""Migration 0017 (disputes decided by an auditor) keeps the value ledger's rows both ways: upgraded,
an obligation can hold a second delivery (one made again after an upheld dispute); downgraded, it
keeps the latest and the one-delivery rule returns; upgraded again, nothing is lost."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

import pytest
import sqlalchemy as sa
from alembic import command
from sqlmodel import Session, select
from support.core import make_settings, new_database_url
from support.oauth import OFFER, REDIRECT

from broker.consent.offer_schemas import OfferDraft
from broker.db import alembic_config
from broker.oauth.clients import register_brand
from broker.runtime import build_runtime
from broker.value.models import Delivery, Obligation


def test_a_second_delivery_survives_upgrade_and_the_latest_survives_downgrade(tmp_path: Path) -> None:
    url = new_database_url(tmp_path)
    config = alembic_config(url)
    command.upgrade(config, "head")
    runtime = build_runtime(make_settings(tmp_path / "var", url))
    try:
        with Session(runtime.engine) as db:
            brand = register_brand(
                db, name="Grocer", redirect_uris=[REDIRECT], public=False, clock=runtime.clock
            ).brand
            offer = runtime.offers.create(db, brand, OfferDraft.model_validate(OFFER))
            customer = runtime.accounts.create(db, f"{uuid4()}@example.org", "not-a-hash", verified=True)
            grant = runtime.grants.create(db, customer_id=customer.id, offer=offer, fields=["email"])
            obligation = db.exec(select(Obligation).where(Obligation.grant_id == grant.id)).one()
            for code in ("FIRST", "AGAIN"):
                runtime.value.deliver(db, grant, obligation_id=obligation.id, kind="voucher",
                                      amount=Decimal("10.00"), currency="EUR", redemption=code)  # fmt: skip
                if code == "FIRST":
                    runtime.value.dispute(db, customer.id, obligation.id, "refused at the till")
                    runtime.value.uphold(db, obligation, runtime.clock() + timedelta(days=7))
            db.commit()
            deliveries = db.exec(select(Delivery.id).order_by(Delivery.delivered_at)).all()  # type: ignore[arg-type]
        assert len(deliveries) == 2

        def stored() -> list[object]:
            with runtime.engine.connect() as connection:
                return list(connection.execute(sa.text("SELECT id FROM value_delivery")).scalars())

        command.downgrade(config, "0016")
        assert [str(d).replace("-", "") for d in stored()] == [deliveries[1].hex], "the latest is kept"
        with pytest.raises(sa.exc.IntegrityError), runtime.engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO value_delivery (id, obligation_id, kind, delivered_at) "
                    "SELECT :id, obligation_id, kind, delivered_at FROM value_delivery"
                ),
                {"id": uuid4().hex if url.startswith("sqlite") else str(uuid4())},
            )
        command.upgrade(config, "head")
        assert len(stored()) == 1
    finally:
        runtime.dispose()
