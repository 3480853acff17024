"""A coarse device label from a User-Agent header ("Firefox on Linux"), for the session list and the
security activity.

Only the label is ever stored: not the header, not a version, not an IP address. It is what a person
needs to recognise their own browser ("that is my phone") and no more, so the stored value does not
fingerprint anyone. Parsing uses ua-parser's maintained rules (ua-parser-builtins); the header is cut
to a bounded length first, so a hostile header cannot make the regular expressions do unbounded work.
"""

from __future__ import annotations

from ua_parser import parse_os, parse_user_agent

__all__ = ["UNKNOWN_DEVICE", "device_label"]

UNKNOWN_DEVICE = "Unknown device"
MAX_HEADER_CHARS = 512
MAX_LABEL_CHARS = 100
_UNKNOWN = {"", "Other"}


def device_label(user_agent: str | None) -> str:
    """ "<browser> on <system>", either part alone when only one is known, else "Unknown device"."""
    header = (user_agent or "")[:MAX_HEADER_CHARS]
    if not header.strip():
        return UNKNOWN_DEVICE
    browser = parse_user_agent(header)
    system = parse_os(header)
    browser_name = browser.family if browser and browser.family not in _UNKNOWN else None
    system_name = system.family if system and system.family not in _UNKNOWN else None
    if browser_name and system_name:
        label = f"{browser_name} on {system_name}"
    else:
        label = browser_name or (f"A browser on {system_name}" if system_name else UNKNOWN_DEVICE)
    return label[:MAX_LABEL_CHARS]
