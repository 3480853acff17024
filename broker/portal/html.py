"""The portal's templates (`broker/portal/templates`), rendered by `broker.web.pages`."""

from __future__ import annotations

from broker.web.pages import Pages

PAGES = Pages("broker.portal")
render = PAGES.render
