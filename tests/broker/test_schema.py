"""The database schema and the API contract: migrations match the models, the app refuses an
unmigrated database, and the committed OpenAPI document matches the app."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine
from sqlmodel import Session, SQLModel, col, select
from support.core import cli_env, make_settings, new_database_url

from broker.accounts.models import Brand
from broker.app import create_app
from broker.db import create_db_engine
from broker.errors import DatabaseNotMigrated
from broker.openapi import render
from broker.tables import import_models

ROOT = Path(__file__).resolve().parents[2]


def test_migrations_match_the_models(engine: Engine) -> None:
    import_models()
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata
        )
    assert diff == [], "models changed without a migration: write one with alembic revision --autogenerate"


def test_app_refuses_an_unmigrated_database_and_says_what_to_run(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "var", new_database_url(tmp_path))
    with pytest.raises(DatabaseNotMigrated, match="run `consentry migrate`"):
        create_app(settings)


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "var", new_database_url(tmp_path))
    consentry = Path(sys.executable).parent / "consentry"
    result = subprocess.run(
        [str(consentry), "serve", "--port", "1"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "consentry migrate" in " ".join(result.stderr.split())


def test_migrate_then_demo_is_idempotent(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "var", new_database_url(tmp_path))
    consentry = str(Path(sys.executable).parent / "consentry")
    for _ in range(2):
        subprocess.run([consentry, "migrate"], env=env, check=True, capture_output=True, timeout=120)
        demo = subprocess.run(
            [consentry, "demo"], env=env, check=True, capture_output=True, text=True, timeout=120
        )
        assert json.loads(demo.stdout)["customer"]["email"] == "demo@example.com"


def test_committed_openapi_matches_the_app() -> None:
    committed = (ROOT / "openapi" / "openapi.json").read_text()
    assert committed == render(), "openapi/openapi.json is stale: run `make openapi` and commit it"


# Public documents that take no input and always answer: nothing can go wrong that a client could fix.
ALWAYS_SERVED = {("get", "/.well-known/jwks.json"), ("get", "/v1/audit/key")}


def test_every_operation_documents_its_errors() -> None:
    spec = json.loads(render())
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            assert operation.get("operationId"), f"{method.upper()} {path} has no stable operationId"
            codes = {int(code) for code in operation["responses"]}
            if (method, path) in ALWAYS_SERVED:
                assert "parameters" not in operation and "requestBody" not in operation
                continue
            assert any(400 <= code < 600 for code in codes), f"{method.upper()} {path} documents no error"


def test_brands_create_prints_credentials_and_public_brands_get_no_secret(tmp_path: Path) -> None:
    url = new_database_url(tmp_path)
    env = cli_env(tmp_path / "var", url)
    consentry = str(Path(sys.executable).parent / "consentry")
    subprocess.run([consentry, "migrate"], env=env, check=True, capture_output=True, timeout=120)
    base = [consentry, "brands", "create", "--name", "Grocer", "--redirect-uri", "https://grocer.example/cb"]
    confidential = json.loads(
        subprocess.run(base, env=env, check=True, capture_output=True, text=True, timeout=60).stdout
    )
    assert confidential["client_id"].startswith("brd_") and confidential["client_secret"].startswith("cs_")
    public = json.loads(
        subprocess.run(
            [*base, "--public"], env=env, check=True, capture_output=True, text=True, timeout=60
        ).stdout
    )
    assert public["client_secret"] is None
    bad = subprocess.run(
        [*base[:-1], "http://grocer.example/cb"], env=env, capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 1 and "https://" in bad.stderr


def test_brands_create_takes_the_openid_connect_settings(tmp_path: Path) -> None:
    url = new_database_url(tmp_path)
    env = cli_env(tmp_path / "var", url)
    consentry = str(Path(sys.executable).parent / "consentry")
    subprocess.run([consentry, "migrate"], env=env, check=True, capture_output=True, timeout=120)
    base = [consentry, "brands", "create", "--name", "Grocer", "--redirect-uri", "https://grocer.example/cb"]
    extra = ["--id-token-alg", "Ed25519", "--post-logout-redirect-uri", "https://grocer.example/bye"]
    made = subprocess.run([*base, *extra], env=env, check=True, capture_output=True, text=True, timeout=60)
    client_id = json.loads(made.stdout)["client_id"]
    engine = create_db_engine(url)
    try:
        with Session(engine) as session:
            brand = session.exec(select(Brand).where(col(Brand.client_id) == client_id)).one()
            assert brand.id_token_signed_response_alg == "Ed25519"
            assert brand.post_logout_redirect_uris == ["https://grocer.example/bye"]
    finally:
        engine.dispose()
    for bad in (["--id-token-alg", "HS256"], ["--post-logout-redirect-uri", "http://grocer.example/bye"]):
        refused = subprocess.run([*base, *bad], env=env, capture_output=True, text=True, timeout=60)
        assert refused.returncode == 1 and refused.stderr.startswith("error: "), bad


def _references(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def test_every_reference_of_the_document_resolves() -> None:
    """A generator stops at the first `$ref` to nothing (openapi-typescript did, on a 422 of the
    registration endpoints that named FastAPI's validation schema after it was dropped)."""
    spec = json.loads(render())
    references = set(_references(spec))
    assert len(references) > 50
    for reference in references:
        assert reference.startswith("#/components/schemas/"), reference
        assert reference.removeprefix("#/components/schemas/") in spec["components"]["schemas"], reference
