"""Email addresses compared as people read them.

Two forms of an address are indexed (both as blind tokens, `vault.blind_index`, never in clear):

    canonical   NFKC, then Unicode case folding: `\uff55nicode@…` (a fullwidth u) is `unicode@…`, `ﬁsh@…` is
                `fish@…`, `Straße@…` is `strasse@…`. Equal canonical forms are the same account: the
                login looks up this token, and it is unique.
    skeleton    Unicode TS #39's confusables skeleton of the canonical form, from ICU's SpoofChecker
                (the Unicode Consortium's own data, kept current with ICU): Cyrillic `\u0430` and Latin `a`,
                `rn` and `m` share a skeleton. A skeleton that another account has is a look-alike of
                that account's address: refused at sign-up (as if taken, without telling anyone whose)
                and at a change of address (with a clear message). Not unique: accounts made before
                skeletons existed may collide, and get theirs at their next login.
"""

from __future__ import annotations

import unicodedata
from functools import cache

import icu

__all__ = ["canonical", "skeleton"]


def canonical(email: str) -> str:
    """The address as a person reads it: trimmed, NFKC-normalised and case-folded."""
    return unicodedata.normalize("NFKC", email.strip()).casefold()


@cache
def _checker() -> icu.SpoofChecker:
    return icu.SpoofChecker()


def skeleton(email: str) -> str:
    """The TS #39 confusables skeleton of the canonical address (equal skeletons look alike)."""
    # getSkeleton's first argument (a check type) is ignored since ICU 58; the skeleton is TS #39's.
    return str(_checker().getSkeleton(0, canonical(email)))
