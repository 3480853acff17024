"""The profile editor's form: what the browser posts, and how it becomes profile values."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vault.fields import CATALOGUE, CHANNELS, DIETARY, INTEREST_TAGS, LIFE_STAGES, SPECIAL_CATEGORY_DIETARY

TEXT_FIELDS = ("email", "phone", "given_name", "family_name", "postcode", "city", "country")
CHOICES = {"dietary": DIETARY, "interests": INTEREST_TAGS, "preferred_channels": CHANNELS}


class ProfileForm(BaseModel):
    """Every field as the form sends it: text as typed, boxes as the list of ticked values."""

    model_config = ConfigDict(extra="ignore")

    email: str = Field(default="", max_length=320)
    phone: str = Field(default="", max_length=64)
    given_name: str = Field(default="", max_length=200)
    family_name: str = Field(default="", max_length=200)
    birthdate: str = Field(default="", max_length=10)
    postcode: str = Field(default="", max_length=16)
    city: str = Field(default="", max_length=200)
    country: str = Field(default="", max_length=2)
    household_size: str = Field(default="", max_length=4)
    life_stage: str = Field(default="", max_length=40)
    dietary: list[str] = Field(default_factory=list, max_length=len(DIETARY))
    interests: list[str] = Field(default_factory=list, max_length=len(INTEREST_TAGS))
    preferred_channels: list[str] = Field(default_factory=list, max_length=len(CHANNELS))

    def values(self) -> dict[str, Any]:
        """The profile to store (PUT): what was filled in; an empty field is one to remove."""
        values: dict[str, Any] = {}
        for name in (*TEXT_FIELDS, "birthdate", "life_stage"):
            text = getattr(self, name).strip()
            if name == "phone":  # people type "+44 20 7946 0958"; the vault keeps E.164, "+442079460958"
                text = "".join(c for c in text if c not in " -().")
            if text:
                values[name] = text
        size = self.household_size.strip()
        if size:
            values["household_size"] = int(size) if size.isdigit() else size  # the vault says what is wrong
        for name in CHOICES:
            if getattr(self, name):
                values[name] = getattr(self, name)
        return values


def form_context(values: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    """What the template needs: each field's title, current value and error, and the choices."""

    def text(name: str) -> str:
        value = values.get(name)
        return "" if value is None else str(value)

    return {
        "text_fields": [
            {"name": n, "title": CATALOGUE[n].title, "hint": CATALOGUE[n].description, "value": text(n)}
            for n in TEXT_FIELDS
        ],
        "birthdate": text("birthdate"),
        "household_size": text("household_size"),
        "life_stage": text("life_stage"),
        "life_stages": LIFE_STAGES,
        "choices": [
            {
                "name": name,
                "title": CATALOGUE[name].title,
                "options": [
                    {
                        "value": v,
                        "checked": v in (values.get(name) or []),
                        "special": v in SPECIAL_CATEGORY_DIETARY,
                    }
                    for v in options
                ],
            }
            for name, options in CHOICES.items()
        ],
        "errors": errors,
    }
