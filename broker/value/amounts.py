"""Amounts of value: exact hundredths for storage and sums, and the check that a delivery is what the
offer declared.

Amounts travel as decimal strings ("10.00") and are stored as integers of hundredths (`amount_minor`),
so the database sums them without floats. The API accepts at most two decimals and 1,000,000, so
nothing is lost (the conversion is exact to 28 digits, the decimal context's precision); a third
decimal given here anyway is dropped towards zero, never rounded up.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from broker.errors import ValidationFailed

__all__ = ["check_delivery", "from_minor", "to_minor"]


def to_minor(amount: Decimal | str | None) -> int | None:
    """An exact amount in hundredths."""
    return None if amount is None else int(Decimal(amount) * 100)


def from_minor(amount: int | None) -> str | None:
    """Hundredths back to the exact decimal string."""
    return None if amount is None else format(Decimal(amount) / 100, ".2f")


def check_delivery(
    declared: dict[str, Any], *, kind: str, amount: Decimal | None, currency: str | None
) -> None:
    """What is delivered must be what was declared: same kind, currency, and at least the amount."""
    errors = []
    if kind != declared["kind"]:
        errors.append(
            {"pointer": "/kind", "detail": f"the offer declared a {declared['kind']}, not a {kind}"}
        )
    if declared.get("currency") != currency:
        wanted = declared.get("currency")
        detail = (
            f"the offer declared {wanted}" if wanted else "the declared value has no currency; leave it out"
        )
        errors.append({"pointer": "/currency", "detail": detail})
    wanted_amount = declared.get("amount")
    if wanted_amount is None and amount is not None:
        errors.append({"pointer": "/amount", "detail": "the declared value has no amount; leave it out"})
    elif wanted_amount is not None and (amount is None or amount < Decimal(wanted_amount)):
        errors.append(
            {"pointer": "/amount", "detail": f"the offer declared {wanted_amount}: deliver at least that"}
        )
    if errors:
        raise ValidationFailed("; ".join(e["detail"] for e in errors), errors=errors)
