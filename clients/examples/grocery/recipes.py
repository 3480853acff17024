"""What Fresh Basket shows a shopper: recipes that fit every one of their dietary needs, scaled to
their household, and a box for their stage of life. Plain data and two pure functions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Recipe", "box_for", "recipes_for"]


@dataclass(frozen=True, slots=True)
class Recipe:
    """A recipe, the dietary needs it meets, and how many it serves."""

    title: str
    suits: frozenset[str]
    serves: int = 2


_ALL = frozenset(
    {"vegetarian", "vegan", "pescatarian", "halal", "kosher", "gluten_free", "lactose_free", "nut_allergy"}
)
_NO_MEAT = frozenset({"vegetarian", "pescatarian"})

_FREE_OF_ALL = frozenset({"halal", "kosher", "gluten_free", "lactose_free", "nut_allergy"})

RECIPES: tuple[Recipe, ...] = (
    Recipe("Chickpea and spinach curry", _ALL, serves=4),
    Recipe("Lentil shepherd's pie", _NO_MEAT | _FREE_OF_ALL | {"vegan"}),
    Recipe("Mushroom risotto", _NO_MEAT | {"halal", "kosher", "gluten_free", "nut_allergy"}),
    Recipe("Cashew stir-fry with tofu", _NO_MEAT | {"vegan", "halal", "kosher", "lactose_free"}),
    Recipe("Baked salmon with new potatoes", _FREE_OF_ALL - {"lactose_free"} | {"pescatarian"}),
    Recipe(
        "Roast chicken traybake", frozenset({"halal", "gluten_free", "lactose_free", "nut_allergy"}), serves=4
    ),
    Recipe("Margherita flatbreads", _NO_MEAT | {"halal", "kosher", "nut_allergy"}),
    Recipe("Black bean tacos", _NO_MEAT | _FREE_OF_ALL | {"vegan"}),
)

_BOXES: Mapping[str, str] = {
    "student": "the Budget Box: five dinners under 15 GBP",
    "young_professional": "the Quick Box: dinners in 20 minutes",
    "couple": "the Date Night Box: two special dinners a week",
    "family_young_children": "the Little Chefs Box: recipes to cook with children",
    "family_teenagers": "the Big Appetite Box: double portions",
    "empty_nester": "the Discovery Box: a new cuisine every week",
    "retired": "the Classic Box, with a weekday delivery slot",
}


def recipes_for(dietary: Sequence[str], household: int | None) -> list[tuple[Recipe, int]]:
    """Recipes that meet every dietary need, each with how many times to make it for the household."""
    needs = frozenset(dietary)
    people = household or 2
    return [(r, -(-people // r.serves)) for r in RECIPES if needs <= r.suits]


def box_for(life_stage: str | None) -> str | None:
    """The box that fits a stage of life, if the shopper shared it."""
    return _BOXES.get(life_stage) if life_stage else None
