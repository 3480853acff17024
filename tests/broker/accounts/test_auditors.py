"""Auditors: a token shown once and stored as its SHA-256, a name that is a name, and a token that
stops working when revoked."""

from __future__ import annotations

import hashlib

import pytest
from sqlmodel import Session, select

from broker.accounts.auditors import AUDITOR_TOKEN_PREFIX
from broker.accounts.models import Auditor
from broker.errors import NotAuthenticated, ValidationFailed
from broker.runtime import Runtime


def test_a_new_auditor_gets_a_token_that_only_its_hash_is_kept_of(db: Session, runtime: Runtime) -> None:
    auditor, token = runtime.auditors.create(db, "  Independent Audit Ltd ")
    assert auditor.name == "Independent Audit Ltd" and auditor.created_at == runtime.clock()
    assert token.startswith(AUDITOR_TOKEN_PREFIX) and len(token) >= len(AUDITOR_TOKEN_PREFIX) + 43
    stored = db.exec(select(Auditor).where(Auditor.id == auditor.id)).one()
    assert stored.token_hash == hashlib.sha256(token.encode()).digest()
    assert token not in repr(stored.model_dump())
    assert runtime.auditors.authenticate(db, token).id == auditor.id
    assert runtime.auditors.create(db, "Another")[1] != token


@pytest.mark.parametrize("name", ["Prüfstelle Nord", "x" * 200, "A"])
def test_any_printable_name_up_to_200_characters_is_accepted(
    db: Session, runtime: Runtime, name: str
) -> None:
    assert runtime.auditors.create(db, name)[0].name == name


@pytest.mark.parametrize("name", ["", "   ", "x" * 201, "tab\there", "two\nlines", "nul\x00", "bidi\u202e"])
def test_names_that_are_not_printable_text_are_refused(db: Session, runtime: Runtime, name: str) -> None:
    with pytest.raises(ValidationFailed, match="1 to 200 printable characters") as raised:
        runtime.auditors.create(db, name)
    assert raised.value.extensions["errors"][0]["pointer"] == "/name"


def test_unknown_and_revoked_tokens_are_refused(db: Session, runtime: Runtime) -> None:
    auditor, token = runtime.auditors.create(db, "Audit Co")
    with pytest.raises(NotAuthenticated, match="not an auditor token"):
        runtime.auditors.authenticate(db, token + "x")
    auditor.revoked_at = runtime.clock()
    db.add(auditor)
    db.flush()
    with pytest.raises(NotAuthenticated, match="revoked"):
        runtime.auditors.authenticate(db, token)
