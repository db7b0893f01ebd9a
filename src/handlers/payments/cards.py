"""Detection and redaction of anything that looks like a card number (PAN).

Requests must carry a payment token, never a card number. A PAN is 13-19
digits passing the Luhn check; people write them with spaces or dashes, so
up to two separator characters between digits still count as one number,
and a PAN written between other numbers is still found.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

MIN_PAN_DIGITS = 13
MAX_PAN_DIGITS = 19
REDACTED = "[REDACTED-PAN]"

# A run of at least 13 digits, allowing up to two of ' ', '-' between digits.
_CANDIDATE = re.compile(r"(?<![0-9])[0-9](?:[ \-]{0,2}[0-9]){12,}(?![0-9])")
_SEPARATORS = re.compile(r"[ \-]+")


def luhn_valid(digits: str) -> bool:
    """True when a string of ASCII digits passes the Luhn checksum."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _has_pan(run: str) -> bool:
    """True when consecutive digit groups of a run form a 13-19 digit Luhn-valid number.

    Groups are split at separators, so "12 4111 1111 1111 1111 3" is found even
    though the whole run is 22 digits; a group is never cut in the middle, so an
    ordinary long number does not match by chance in one of its sub-windows.
    """
    groups = _SEPARATORS.split(run)
    for first in range(len(groups)):
        digits = ""
        for group in groups[first:]:
            digits += group
            if len(digits) > MAX_PAN_DIGITS:
                break
            if len(digits) >= MIN_PAN_DIGITS and luhn_valid(digits):
                return True
    return False


def _pan_spans(text: str) -> Iterator[tuple[int, int]]:
    """Spans of text that resemble a card number."""
    for match in _CANDIDATE.finditer(text):
        if _has_pan(match.group()):
            yield match.span()


def _normalise(text: str) -> str:
    """Fold look-alike digits (full-width, other scripts) to ASCII before scanning."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFKC", text)


def contains_pan(text: str) -> bool:
    """True when the text contains anything resembling a card number."""
    return any(True for _ in _pan_spans(_normalise(text)))


def redact(text: str) -> str:
    """The text with every card-number look-alike replaced by a marker."""
    normalised = _normalise(text)
    spans = list(_pan_spans(normalised))
    if not spans:
        return text
    # NFKC can change lengths, so redact the normalised text when it differs.
    out, last = [], 0
    for start, end in spans:
        out.append(normalised[last:start])
        out.append(REDACTED)
        last = end
    out.append(normalised[last:])
    return "".join(out)
