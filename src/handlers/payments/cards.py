"""Detection and redaction of anything that looks like a card number (PAN).

Requests must carry a payment token, never a card number. A PAN is 13-19
digits passing the Luhn check; people write them with spaces or dashes, so
up to three separator characters between digit groups still count as one
number, and a PAN written between other numbers is still found.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

MIN_PAN_DIGITS = 13
MAX_PAN_DIGITS = 19
# Printed card numbers group their digits in 3-6 (4-4-4-4, Amex 4-6-5, Diners 4-6-4).
MIN_GROUP_DIGITS = 3
MAX_GROUP_DIGITS = 6
REDACTED = "[REDACTED-PAN]"

# A run of at least 13 digits, allowing up to three of ' ', '-' between digits (" - ").
_CANDIDATE = re.compile(r"(?<![0-9])[0-9](?:[ \-]{0,3}[0-9]){12,}(?![0-9])")
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


def _has_pan(run: str, glued_start: bool, glued_end: bool) -> bool:
    """True when the run holds a card number as people write one.

    Either 13-19 digits in one group, or consecutive whole groups of 3-6
    digits (4-4-4-4, 4-6-5, ...) totalling 13-19. A group is never cut, and a
    group glued to letters is not whole, so "12 4111 1111 1111 1111 3" is
    found while a UUID (8-4-4-4-12 hex) or a long number does not match by chance.
    """
    groups = _SEPARATORS.split(run)
    last = len(groups) - 1
    for first, group in enumerate(groups):
        if MIN_PAN_DIGITS <= len(group) <= MAX_PAN_DIGITS and luhn_valid(group):
            return True
        if first == 0 and glued_start:
            continue
        digits = ""
        for index in range(first, len(groups)):
            part = groups[index]
            if not MIN_GROUP_DIGITS <= len(part) <= MAX_GROUP_DIGITS:
                break
            if index == last and glued_end:
                break
            digits += part
            if len(digits) > MAX_PAN_DIGITS:
                break
            if len(digits) >= MIN_PAN_DIGITS and luhn_valid(digits):
                return True
    return False


def _pan_spans(text: str) -> Iterator[tuple[int, int]]:
    """Spans of text that resemble a card number."""
    for match in _CANDIDATE.finditer(text):
        start, end = match.span()
        glued_start = start > 0 and text[start - 1].isalpha()
        glued_end = end < len(text) and text[end].isalpha()
        if _has_pan(match.group(), glued_start, glued_end):
            yield start, end


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
