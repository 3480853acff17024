"""Mail templates by name: `<name>.subject.txt`, `<name>.txt` and `<name>.html` in this package's
`templates/` directory, rendered with Jinja (HTML autoescaped, every variable required).

A template gets the caller's context plus `base_url` (the broker's public URL, for links). Links
carry single-use codes, never session tokens: a message can be forwarded or read by someone else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, TemplateNotFound, select_autoescape

__all__ = ["Rendered", "Templates"]


@dataclass(frozen=True, slots=True)
class Rendered:
    """A message's subject and its two bodies."""

    subject: str
    text: str
    html: str


class Templates:
    """The mail templates, loaded from the package (an outer layer: Jinja is allowed here)."""

    def __init__(self) -> None:
        self._env = Environment(
            loader=PackageLoader("broker.mail", "templates"),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )

    def render(self, name: str, context: Mapping[str, Any]) -> Rendered:
        """Render template `name`; an unknown name is a programming error (LookupError)."""
        try:
            subject = self._env.get_template(f"{name}.subject.txt").render(context)
            text = self._env.get_template(f"{name}.txt").render(context)
            html = self._env.get_template(f"{name}.html").render(context)
        except TemplateNotFound as exc:
            raise LookupError(f"no mail template {name!r} (missing {exc.name})") from None
        # A subject is one header line: a newline in it would start a forged header.
        return Rendered(subject=" ".join(subject.split()), text=text, html=html)
