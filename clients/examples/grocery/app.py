"""Fresh Basket's web app: connect with Consentry, personalised recipes, the voucher delivered back,
and deletion attested when the sharing ends. One process, its state in memory (an example).

A shopper who accepted Fresh Basket's offer in Consentry's offer directory is known two ways: the
`grant.created` webhook (if `webhook_secret` is configured) carries a grant ticket, which the app
exchanges for the grant's tokens at once, reads the fields and delivers the voucher; and "I accepted
in the directory" sends the browser through a silent authorization (`prompt=none`), which returns
that grant without a consent screen, so the shop personalises for that browser."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.resources import files
from typing import Annotated, Any

from fastapi import Cookie, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from clients.brand import (
    ConsentryClient,
    ConsentryError,
    GrantSession,
    OAuthError,
    Offer,
    WebhookVerificationError,
    verify_webhook,
)
from clients.examples.grocery.recipes import box_for, recipes_for

__all__ = ["GroceryConfig", "create_app"]

BROWSER_COOKIE = "fresh_basket"
_CSP = (
    "default-src 'none'; style-src 'self'; form-action 'self' {broker}; frame-ancestors 'none'; "
    "base-uri 'none'"
)


class GroceryConfig(BaseModel):
    """Who Fresh Basket is at the broker: its client, where the broker sends shoppers back, its offer."""

    broker_url: str
    client_id: str
    client_secret: str
    redirect_uri: str
    offer_id: str
    webhook_secret: str | None = None  # of the endpoint registered for /consentry/webhook


@dataclass
class Shopper:
    """What Fresh Basket holds about one connected browser: the grant's tokens, the fields read, the
    voucher code delivered. Deleted when the sharing ends."""

    grant: GrantSession
    fields: dict[str, Any]
    voucher: str | None = None


@dataclass
class Memory:
    """Connected shoppers by browser, and authorizations under way by state."""

    shoppers: dict[str, Shopper] = field(default_factory=dict)
    pending: dict[str, tuple[str, str]] = field(default_factory=dict)  # state -> (browser, verifier)
    silent: set[str] = field(default_factory=set)  # states of silent authorizations (prompt=none)
    started: dict[str, Shopper] = field(default_factory=dict)  # grant id -> from the directory's webhook
    deleted: dict[str, str] = field(default_factory=dict)  # browser -> what we told the broker
    lock: threading.Lock = field(default_factory=threading.Lock)
    csrf_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def csrf(self, browser: str) -> str:
        """A form token bound to the browser: an HMAC under a key that lives as long as the process."""
        return hmac.new(self.csrf_key, browser.encode(), hashlib.sha256).hexdigest()


def create_app(
    config: GroceryConfig,
    *,
    client: ConsentryClient | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> FastAPI:
    """The app, talking to the broker through `client` (built from `config` if not given)."""
    broker = client or ConsentryClient(
        config.broker_url,
        client_id=config.client_id,
        client_secret=config.client_secret,
        redirect_uri=config.redirect_uri,
    )
    memory = Memory()
    templates = Environment(
        loader=FileSystemLoader(str(files("clients.examples.grocery") / "templates")),
        autoescape=select_autoescape(default=True),
    )
    offer_cache: list[Offer] = []
    app = FastAPI(title="Fresh Basket (example brand)", docs_url=None, redoc_url=None, openapi_url=None)

    def offer() -> Offer:
        if not offer_cache:
            offers = broker.list_offers(limit=100).items
            offer_cache.append(next(o for o in offers if str(o.id) == config.offer_id))
        return offer_cache[0]

    def page(name: str, browser: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = templates.get_template(name).render(csrf=memory.csrf(browser), **context)
        response = HTMLResponse(html, status_code=status)
        response.headers["content-security-policy"] = _CSP.format(broker=config.broker_url)
        response.headers["x-content-type-options"] = "nosniff"
        response.headers["referrer-policy"] = "same-origin"
        response.set_cookie(BROWSER_COOKIE, browser, httponly=True, samesite="lax")
        return response

    def forget(browser: str, why: str) -> None:
        """Delete what we held about this browser's shopper, then tell the broker we did."""
        with memory.lock:
            shopper = memory.shoppers.pop(browser, None)
        if shopper is None:
            return
        shopper.fields.clear()
        try:
            broker.attest_deletion(shopper.grant.grant_id, outcome="deleted", completed_at=clock())
            memory.deleted[browser] = f"{why}: we deleted what we held and told Consentry so."
        except ConsentryError as exc:
            memory.deleted[browser] = f"{why}: we deleted what we held (Consentry: {exc})."

    @app.get("/")
    def home(browser: Annotated[str | None, Cookie(alias=BROWSER_COOKIE)] = None) -> Response:
        """The shop: personalised when connected, else an invitation to connect."""
        browser = _browser(browser)
        shopper = memory.shoppers.get(browser)
        if shopper is not None:
            try:  # read again: the shopper may have narrowed or ended the sharing since
                shopper.fields = dict(broker.read_profile(shopper.grant).fields)
            except ConsentryError:
                forget(browser, "You stopped sharing with us")
                shopper = None
        if shopper is None:
            return page("home.html", browser, offer=offer(), ended=memory.deleted.pop(browser, None))
        fields = shopper.fields
        household = fields.get("household_size")
        dietary = fields.get("dietary")
        return page(
            "shop.html",
            browser,
            fields=fields,
            recipes=recipes_for(
                dietary if isinstance(dietary, list) else [],
                household if isinstance(household, int) else None,
            ),
            box=box_for(str(fields["life_stage"]) if "life_stage" in fields else None),
            voucher=shopper.voucher,
            value=offer().value,
        )

    def welcome(grant: GrantSession) -> Shopper:
        """A new shopper's grant: read what they shared, deliver the voucher the offer declared."""
        fields = dict(broker.read_profile(grant).fields)
        value = offer().value
        voucher = f"FRESH-{secrets.token_hex(4).upper()}"
        broker.deliver_value(
            grant.grant_id,
            kind=value["kind"],
            amount=value.get("amount"),
            currency=value.get("currency"),
            redemption=voucher,
        )
        return Shopper(grant=grant, fields=fields, voucher=voucher)

    @app.get("/connect")
    def connect(
        existing: bool = False, browser: Annotated[str | None, Cookie(alias=BROWSER_COOKIE)] = None
    ) -> Response:
        """Send the shopper to Consentry's consent screen for our offer (PKCE, state); `existing`: a
        silent request for the grant they already gave (in the offer directory), no screen at all."""
        browser = _browser(browser)
        request = broker.authorization_url(offer_id=config.offer_id, prompt="none" if existing else None)
        with memory.lock:
            memory.pending[request.state] = (browser, request.code_verifier)
            if existing:
                memory.silent.add(request.state)
        response = RedirectResponse(request.url, status_code=303)
        response.set_cookie(BROWSER_COOKIE, browser, httponly=True, samesite="lax")
        return response

    @app.get("/callback")
    def callback(
        request: Request, browser: Annotated[str | None, Cookie(alias=BROWSER_COOKIE)] = None
    ) -> Response:
        """Back from Consentry: trade the code for the grant, read the fields, deliver the voucher."""
        browser = _browser(browser)
        state = request.query_params.get("state", "")
        with memory.lock:
            pending = memory.pending.pop(state, None)
            silent = state in memory.silent
            memory.silent.discard(state)
        if pending is None or not secrets.compare_digest(pending[0], browser):
            return page(
                "home.html",
                browser,
                status=400,
                offer=offer(),
                ended="That sign-in link was not ours; connect again.",
            )
        if "error" in request.query_params and silent:
            return page(
                "home.html",
                browser,
                offer=offer(),
                ended="We found no sharing of yours: sign in to Consentry and accept our offer in its "
                "directory, or connect below.",
            )
        if "error" in request.query_params:
            return page(
                "home.html",
                browser,
                offer=offer(),
                ended="You chose not to share: that is fine, the shop works without it.",
            )
        try:
            grant = broker.handle_callback(str(request.url), expected_state=state, code_verifier=pending[1])
            with memory.lock:  # welcomed already, when the directory's webhook told us of the grant
                shopper = memory.started.pop(str(grant.grant_id), None)
            if shopper is None:
                shopper = welcome(grant)
            else:
                shopper.grant = grant
        except ConsentryError as exc:
            return page("home.html", browser, status=502, offer=offer(), ended=f"Connecting failed: {exc}")
        with memory.lock:
            memory.shoppers[browser] = shopper
        return RedirectResponse("/", status_code=303)

    def take(grant_id: str, ticket: str) -> Shopper:
        """Exchange the ticket and welcome the shopper; a ticket an earlier, failed attempt spent is
        replaced by a new one."""
        try:
            grant = broker.exchange_grant_ticket(ticket)
        except OAuthError as exc:
            if exc.error != "invalid_grant":
                raise
            grant = broker.exchange_grant_ticket(broker.new_grant_ticket(grant_id).grant_ticket)
        return welcome(grant)

    @app.post("/consentry/webhook")
    async def webhook(request: Request) -> Response:
        """Consentry's webhooks: a grant a shopper started in the offer directory is welcomed at once
        (its ticket exchanged for its tokens, the fields read, the voucher delivered); one that ends
        before the shopper came is forgotten."""
        if config.webhook_secret is None:
            return Response(status_code=404)
        body = await request.body()
        try:  # no replay cache: a retry after a failure below must be able to finish the work
            event = verify_webhook(secret=config.webhook_secret, headers=request.headers, body=body)
        except WebhookVerificationError as exc:
            return Response(str(exc), status_code=400)
        grant_id, ticket = str(event.data.get("grant_id", "")), event.data.get("grant_ticket")
        if event.type == "grant.created" and isinstance(ticket, str):
            with memory.lock:
                done = grant_id in memory.started  # a retry of a message handled already
            if done:
                return Response(status_code=204)
            try:
                shopper = await run_in_threadpool(take, grant_id, ticket)
            except ConsentryError as exc:  # answered 5xx: the broker retries the message
                return Response(f"could not take the grant: {exc}", status_code=502)
            with memory.lock:
                memory.started[grant_id] = shopper
        elif event.type in ("grant.revoked", "grant.expired"):
            with memory.lock:
                memory.started.pop(grant_id, None)
        return Response(status_code=204)

    @app.post("/disconnect")
    def disconnect(
        csrf: Annotated[str, Form()] = "",
        browser: Annotated[str | None, Cookie(alias=BROWSER_COOKIE)] = None,
    ) -> Response:
        """End the grant from our side, delete what we held and attest it."""
        browser = _browser(browser)
        if not secrets.compare_digest(csrf, memory.csrf(browser)):
            return page(
                "home.html", browser, status=403, offer=offer(), ended="That form expired; try again."
            )
        shopper = memory.shoppers.get(browser)
        if shopper is not None:
            # Already ended by the shopper? Then deleting and attesting is all that is left.
            with contextlib.suppress(ConsentryError):
                broker.end_grant(shopper.grant.grant_id)
            forget(browser, "You disconnected")
        return RedirectResponse("/", status_code=303)

    @app.get("/static/app.css")
    def stylesheet() -> Response:
        css = (files("clients.examples.grocery") / "static" / "app.css").read_text()
        return Response(css, media_type="text/css")

    return app


def _browser(cookie: str | None) -> str:
    """This browser's id: its cookie when it looks like one of ours, else a new one."""
    return cookie if cookie and 20 <= len(cookie) <= 64 else secrets.token_urlsafe(24)
