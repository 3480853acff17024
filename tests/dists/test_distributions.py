"""Brands and auditors install only what they need: each client distribution is built as a wheel,
installed alone in a fresh virtual environment (with pytest, and nothing of the server), and runs its
own tests there (`clients/brand/tests`, `clients/auditor/tests`) against a live server started from
the server's environment. A client that needed a server module would fail to import there.

The wheels and environments are made once per `make test` (`support.dists`, in `$CONSENTRY_DISTS_DIR`,
which the Makefile fills beside the linters; a temporary folder otherwise) and used by the SQLite and
PostgreSQL runs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.core import STRONG_PASSWORD, cli_env, live_server
from support.dists import PROJECTS, VERSION, Built, ensure, run
from support.mail import sign_up_over_http
from support.oauth import REDIRECT, create_brand_with_cli

EMAIL = "grace@example.org"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    shared = os.environ.get("CONSENTRY_DISTS_DIR")
    return ensure(Path(shared) if shared else tmp_path_factory.mktemp("dists"))


def _names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return {
            name.split("/")[0] if ".dist-info" in name else "/".join(name.split("/")[:2])
            for name in archive.namelist()
        }


def test_each_wheel_holds_its_own_packages_only(built: Built) -> None:
    assert {wheel.name for wheel in built.wheels.values()} == {
        f"{name.replace('-', '_')}-{VERSION}-py3-none-any.whl" for name in PROJECTS
    }
    tops = {
        name: {n.split("/")[0] for n in _names(wheel) if ".dist-info" not in n}
        for name, wheel in built.wheels.items()
    }
    assert tops["consentry"] == {"broker", "vault", "migrations"}
    assert _names(built.wheels["consentry-brand"]) - {f"consentry_brand-{VERSION}.dist-info"} == {
        "clients/brand"
    }
    assert _names(built.wheels["consentry-audit"]) - {f"consentry_audit-{VERSION}.dist-info"} == {
        "clients/auditor"
    }
    for name in ("consentry-brand", "consentry-audit"):  # type checkers read the clients' annotations
        folder = name.removeprefix("consentry-").replace("audit", "auditor")
        assert f"clients/{folder}/py.typed" in zipfile.ZipFile(built.wheels[name]).namelist()
    server = set(zipfile.ZipFile(built.wheels["consentry"]).namelist())
    portal = "broker/portal/static/"  # the portal's scripts, the vendored one and its licence included
    assert {
        f"{portal}passkeys.js",
        f"{portal}held.js",
        f"{portal}vendor/jose.js",
        f"{portal}vendor/jose.LICENSE.md",
    } <= server
    assert "migrations/versions/0025_self_custody.py" in server
    example = zipfile.ZipFile(built.wheels["consentry-example-grocery"]).namelist()
    assert {"clients/examples/grocery/templates/home.html", "clients/examples/grocery/static/app.css"} <= set(
        example
    )
    for wheel in built.wheels.values():  # `clients` is a namespace package: no wheel may own it
        with zipfile.ZipFile(wheel) as archive:
            assert "clients/__init__.py" not in archive.namelist()
            assert not any("/tests/" in name for name in archive.namelist()), wheel.name


def test_the_example_app_installs_on_the_sdk_without_the_server(built: Built, tmp_path: Path) -> None:
    """Installed with the SDK alone, the example imports nothing of the server, and its wheel holds the
    templates and styles it serves."""
    python = built.environments["example"]
    probe = (
        "import importlib.util\n"
        "from importlib.resources import files\n"
        "from fastapi.testclient import TestClient\n"
        "from clients.examples.grocery import GroceryConfig, create_app\n"
        "server = ('broker', 'vault', 'migrations', 'clients.auditor')\n"
        "print(sorted(m for m in server if importlib.util.find_spec(m)))\n"
        "config = GroceryConfig(broker_url='http://127.0.0.1:9', client_id='brd_x', client_secret='s',\n"
        "                       redirect_uri='http://127.0.0.1:8001/callback', offer_id='o')\n"
        "with TestClient(create_app(config)) as shop:\n"  # the shop page itself asks the broker
        "    css = shop.get('/static/app.css')\n"
        "home = files('clients.examples.grocery') / 'templates' / 'home.html'\n"
        "print(css.status_code, 'Connect with Consentry' in home.read_text())\n"
    )
    # Not the repository: `-c` and `-m` put the working directory on sys.path; no PYTHONPATH either.
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    assert run([python, "-c", probe], cwd=tmp_path, env=env).split("\n")[:2] == ["[]", "200 True"]
    assert "--credentials" in run([python, "-m", "clients.examples.grocery", "--help"], cwd=tmp_path, env=env)
    printed = run([python, "-m", "clients.examples.grocery", "--version"], cwd=tmp_path, env=env)
    assert printed == f"consentry-example-grocery {VERSION} (on consentry-brand {VERSION})\n"


@pytest.fixture
def server(tmp_path: Path, fresh_database_url: str) -> Iterator[dict[str, str]]:
    """A live server, a brand, an auditor and a customer with a profile: the clients' environment."""
    data_dir = tmp_path / "var"
    client_id, secret = create_brand_with_cli(data_dir, fresh_database_url)
    consentry = Path(sys.executable).parent / "consentry"
    created = run(
        [consentry, "auditors", "create", "--name", "Distribution audit"],
        env=cli_env(data_dir, fresh_database_url),
    )
    with live_server(data_dir, fresh_database_url, tmp_path / "server.log") as base:
        with httpx.Client(base_url=base, timeout=30) as http:
            sign_up_over_http(http, data_dir, EMAIL)
            token = http.post("/v1/sessions", json={"email": EMAIL, "password": STRONG_PASSWORD}).json()[
                "token"
            ]
            profile = {"email": EMAIL, "household_size": 3}
            filled = http.patch("/v1/me/profile", json=profile, headers={"Authorization": f"Bearer {token}"})
            assert filled.status_code == 200, filled.text
        yield {
            "CONSENTRY_URL": base,
            "CONSENTRY_BRAND_ID": client_id,
            "CONSENTRY_BRAND_SECRET": secret,
            "CONSENTRY_BRAND_REDIRECT": REDIRECT,
            "CONSENTRY_CUSTOMER_EMAIL": EMAIL,
            "CONSENTRY_CUSTOMER_PASSWORD": STRONG_PASSWORD,
            "CONSENTRY_AUDIT_TOKEN": json.loads(created)["token"],
        }


def _own_tests(python: Path, project: str, env: dict[str, str], work: Path) -> None:
    """Run a distribution's tests with the environment's python, from a copy outside the repository
    (so nothing of the source tree can be imported in place of the installed wheel); all must pass."""
    tests = work / project
    shutil.copytree(PROJECTS[project] / "tests", tests, ignore=shutil.ignore_patterns("__pycache__"))
    clean = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(work)), "LANG": "C.UTF-8", **env}
    command = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", str(tests)]
    out = run(command, cwd=tests, env=clean)
    written = sum(path.read_text().count("\ndef test_") for path in tests.glob("test_*.py"))
    passed = re.search(r"(\d+) passed", out)
    assert passed is not None and int(passed.group(1)) == written >= 4, out


@pytest.mark.slow
def test_the_brand_sdk_and_the_auditor_pass_their_own_tests_installed_alone(
    built: Built, server: dict[str, str], tmp_path: Path
) -> None:
    _own_tests(built.environments["brand"], "consentry-brand", server, tmp_path)
    _own_tests(built.environments["audit"], "consentry-audit", server, tmp_path)  # the log the brand made
