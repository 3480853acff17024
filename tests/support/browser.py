"""Helpers for the browser tests."""

from __future__ import annotations

from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

SERIOUS = {"serious", "critical"}


def serious_violations(page: Page) -> list[str]:
    """What axe-core (WCAG 2.x rules) finds at serious or critical impact on the page as it is now."""
    results = Axe().run(page)
    return [f"{v['id']}: {v['help']}" for v in results.response["violations"] if v["impact"] in SERIOUS]


# What the focused element is called (its label, text or value) and whether its focus ring shows.
_FOCUSED = """() => {
  const e = document.activeElement;
  const label = (e.labels && e.labels[0] && e.labels[0].innerText) || e.getAttribute('aria-label')
    || e.innerText || e.value || '';
  const style = getComputedStyle(e);
  const ring = style.outlineStyle !== 'none' && style.outlineWidth !== '0px';
  return {name: label.trim(), tag: e.tagName, ring: ring};
}"""


def tab_to(page: Page, name: str, visited: list[str], *, limit: int = 40, prefix: bool = False) -> None:
    """Press Tab until the element called `name` (or, with `prefix`, a name starting with it) has the
    focus; every stop must show its focus ring."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused: dict[str, Any] = page.evaluate(_FOCUSED)
        visited.append(focused["name"])
        assert focused["ring"], f"no visible focus on {focused} after {visited[-8:]}"
        if focused["name"] == name or focused["name"].startswith(name if prefix else name + "\n"):
            return
    raise AssertionError(f"Tab never reached {name!r}; it went through {visited[-limit:]}")


def virtual_authenticator(page: Page, *, prf: bool = False) -> tuple[Any, str]:
    """A CDP virtual authenticator (CTAP2, resident keys, user verification) for the page's context,
    with the PRF extension (hmac-secret) if asked: the CDP session and the authenticator's id."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    options = {
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": True,
        "hasUserVerification": True,
        "isUserVerified": True,
        **({"hasPrf": True} if prf else {}),
    }
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})
    return cdp, str(added["authenticatorId"])
