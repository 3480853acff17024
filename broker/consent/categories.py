"""What an offer is about: a small fixed list, so that a customer's intent (a move, a new baby…) can
reach the brands whose listed offers are of its kind, and no others."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = ["CATEGORY_LABELS", "OfferCategory"]


class OfferCategory(StrEnum):
    """The categories an offer may declare."""

    HOME = "home"
    FAMILY = "family"
    MOTORING = "motoring"
    TRAVEL = "travel"
    INSURANCE = "insurance"
    FOOD = "food"
    RETAIL = "retail"
    FINANCE = "finance"
    HEALTH = "health"
    LEISURE = "leisure"


CATEGORY_LABELS: Final = {
    OfferCategory.HOME: "Home and moving",
    OfferCategory.FAMILY: "Family and children",
    OfferCategory.MOTORING: "Cars and motoring",
    OfferCategory.TRAVEL: "Travel and holidays",
    OfferCategory.INSURANCE: "Insurance",
    OfferCategory.FOOD: "Food and groceries",
    OfferCategory.RETAIL: "Shopping",
    OfferCategory.FINANCE: "Money and banking",
    OfferCategory.HEALTH: "Health and fitness",
    OfferCategory.LEISURE: "Leisure and culture",
}
