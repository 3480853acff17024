"""Helpers for the browser tests."""

from __future__ import annotations

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

SERIOUS = {"serious", "critical"}


def serious_violations(page: Page) -> list[str]:
    """What axe-core (WCAG 2.x rules) finds at serious or critical impact on the page as it is now."""
    results = Axe().run(page)
    return [f"{v['id']}: {v['help']}" for v in results.response["violations"] if v["impact"] in SERIOUS]
