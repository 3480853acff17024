"""Browser tests: Debian's Chromium driven by Playwright against a real `consentry serve`.

Playwright's own browser download does not work here, so the browser is /usr/bin/chromium with the
flags a sandboxless CI box needs. Screenshots go to tests/e2e/artifacts/ (ignored by git).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from support.core import free_port, live_server, running_server

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the session."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies) and a page in it, 360 px wide as the smallest phone."""
    context = browser.new_context(viewport={"width": 360, "height": 800})
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def server(tmp_path: Path, fresh_database_url: str) -> Iterator[str]:
    """A real server on a fresh database; its base URL."""
    with live_server(tmp_path / "var", fresh_database_url, tmp_path / "server.log") as base:
        yield base


@pytest.fixture
def localhost(tmp_path: Path, fresh_database_url: str) -> Iterator[str]:
    """A real server whose public URL (and so passkeys' RP id) is localhost: WebAuthn refuses an IP
    address as relying-party id, and http://localhost is a secure context, as HTTPS is."""
    port = free_port()
    base = f"http://localhost:{port}"
    with running_server(
        tmp_path / "var", fresh_database_url, tmp_path / "server.log", port=port, base_url=base
    ):
        yield base


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
