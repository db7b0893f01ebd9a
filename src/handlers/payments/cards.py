"""Detection and redaction of anything that looks like a card number (PAN).

Requests carry a payment token, never a card number. The detector works on digits, not on
layouts, as PCI DLP tools do:

1. Every Unicode decimal digit is folded to ASCII (Arabic-Indic, Devanagari, fullwidth,
   mathematical, circled, superscript: whatever `unicodedata.digit` knows), one character
   for one character, so a span found in the folded text is the same span in the original.
2. A *digit run* is digits separated by runs of anything that is neither a letter nor a
   digit: spaces of any kind and number, `.`, `/`, `_`, `,`, `-`, ` -- `, U+2010, U+2212,
   zero-width characters, quotes, JSON punctuation, and the Hangul fillers (letters by
   category, blank on screen: `_BLANK_LETTERS`). A letter inside a run ends it; letters
   next to a run hide nothing (`Visa4111 1111 1111 1111` is the run `4111 1111 1111 1111`).
3. The *candidates* of a run are its whole digit groups taken consecutively (a group is
   never cut: `12 4111 1111 1111 1111 34` holds the candidate `4111111111111111`).
4. A candidate is a card number when it has 12-19 digits, passes the Luhn check and starts
   with a card brand's prefix at one of that brand's lengths (`BRANDS`).

Identifiers of a few canonical shapes are not scanned (`_IDENTIFIERS`): UUIDs, X-Ray trace
ids and ISO 8601 date-times. Why: rules 1-4 alone refuse about 2 random UUID4s in 100,000
(an all-digit 8-4-4 run, version digit included, is 16 digits: it occurs in 0.625**15 =
8.7e-4 of UUIDs and passes Luhn and a 16-digit brand prefix in ~2.7% of those, ~2.3e-5; the
4-12 and 12 runs add ~1e-6), and a `22:30:11.123456+00:00` time is a Mastercard-prefixed
16-digit candidate 10% of the time. No card scheme prints numbers in those shapes (8-4-4-4-12
hex, 1-8-24 hex, yyyy-mm-ddThh:mm), and a UUID holds 32 digits, more than any PAN; a number
deliberately disguised as one defeats any detector, as base64 or spelled-out digits do. With
the exemption the rate on UUID4s, trace ids, timestamps and our own ids (base32: digits 2-7
only, and letters) is 0 (tests/handlers/test_card_false_positives.py draws 100,000 of each).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

MIN_PAN_DIGITS = 12
MAX_PAN_DIGITS = 19
REDACTED = "[REDACTED-PAN]"

# (first digits from, to) and lengths of each brand's numbers (ISO/IEC 7812 IIN ranges as the
# schemes publish them). UATP (airline accounts, prefix 1, 15 digits) is left out: it is not a
# card scheme, and "1" + 14 digits is the shape of X-Ray ids and epoch times in every log line.
BRANDS: tuple[tuple[str, tuple[tuple[str, str], ...], frozenset[int]], ...] = (
    ("visa", (("4", "4"),), frozenset({13, 16, 19})),
    ("mastercard", (("51", "55"), ("2221", "2720")), frozenset({16})),
    ("amex", (("34", "34"), ("37", "37")), frozenset({15})),
    ("discover", (("6011", "6011"), ("644", "649"), ("65", "65"), ("622126", "622925")),
     frozenset(range(16, 20))),
    ("diners", (("300", "305"), ("36", "36"), ("38", "39")), frozenset(range(14, 20))),
    ("jcb", (("3528", "3589"),), frozenset(range(16, 20))),
    ("unionpay", (("62", "62"),), frozenset(range(16, 20))),
    ("maestro", (("5018", "5018"), ("5020", "5020"), ("5038", "5038"), ("5893", "5893"),
                 ("6304", "6304"), ("6759", "6759"), ("6761", "6763")),
     frozenset(range(12, 20))),
    ("mir", (("2200", "2204"),), frozenset(range(16, 20))),
    ("rupay", (("60", "60"), ("65", "65"), ("81", "82"), ("508", "508"), ("353", "353"),
               ("356", "356")), frozenset({16})),
    ("verve", (("506099", "506198"), ("650002", "650027"), ("507865", "507964")),
     frozenset({16, 18, 19})),
    ("dankort", (("5019", "5019"),), frozenset({16})),
    ("interpayment", (("636", "636"),), frozenset(range(16, 20))),
    ("instapayment", (("637", "639"),), frozenset({16})),
    ("troy", (("9792", "9792"),), frozenset({16})),
)  # fmt: skip

# A digit run of at least MIN_PAN_DIGITS digits: a digit, then separators (neither letters
# nor digits: `\W` or `_`) and digits, greedily (so the run found is the whole run).
_RUN = re.compile(rf"[0-9](?:[\W_]*[0-9]){{{MIN_PAN_DIGITS - 1},}}")
_GROUP = re.compile(r"[0-9]+")
# The cheap test first: with every separator taken out, are 12 digits ever adjacent? (bytes:
# their translate runs in C, str.translate looks each character up in a dict.)
_SEPARATOR = re.compile(r"[\W_]+")
_ASCII_SEPARATOR_BYTES = bytes(c for c in range(128) if not chr(c).isalnum())
_ADJACENT_DIGITS = re.compile(rf"[0-9]{{{MIN_PAN_DIGITS}}}")
_ADJACENT_DIGIT_BYTES = re.compile(_ADJACENT_DIGITS.pattern.encode())
_HEX = "[0-9A-Fa-f]"
_IDENTIFIERS = re.compile(
    "|".join(
        [
            # UUID in its canonical 8-4-4-4-12 shape (any version), or as 32 hex digits when its
            # version (1-8) and variant (8-b) digits say it is one.
            rf"(?<![0-9A-Za-z]){_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}"
            rf"(?![0-9A-Za-z])",
            rf"(?<![0-9A-Za-z]){_HEX}{{12}}[1-8]{_HEX}{{3}}[89abAB]{_HEX}{{15}}(?![0-9A-Za-z])",
            # X-Ray trace id, and the segment ids of a trace header.
            rf"(?<![0-9A-Za-z])1-{_HEX}{{8}}-{_HEX}{{24}}(?![0-9A-Za-z])",
            rf"(?<=Parent=){_HEX}{{16}}(?![0-9A-Za-z])|(?<=Self=)1-{_HEX}{{8}}-{_HEX}{{24}}",
            # ISO 8601 / RFC 3339 date-time, to the minute at least (a date alone is 8 digits).
            r"(?<![0-9])[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])[T ]"
            r"(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:[.,][0-9]{1,9})?)?"
            r"(?:Z|[+-](?:[01][0-9]|2[0-3]):?[0-5][0-9])?(?![0-9])",
        ]
    )
)
_ASCII_DIGITS = "0123456789"


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


def _prefix_table() -> dict[int, tuple[tuple[int, frozenset[str]], ...]]:
    """Length -> (prefix length, every prefix of that length) for each brand at that length."""
    table: dict[int, dict[int, set[str]]] = {}
    for _, ranges, lengths in BRANDS:
        for low, high in ranges:
            prefixes = {str(value) for value in range(int(low), int(high) + 1)}
            for length in lengths:
                table.setdefault(length, {}).setdefault(len(low), set()).update(prefixes)
    return {
        length: tuple((size, frozenset(prefixes)) for size, prefixes in sorted(by_size.items()))
        for length, by_size in table.items()
    }


_PREFIXES = _prefix_table()


def has_brand_prefix(digits: str) -> bool:
    """True when the digits start with a brand's prefix at one of that brand's lengths."""
    return any(digits[:size] in prefixes for size, prefixes in _PREFIXES.get(len(digits), ()))


def is_pan(digits: str) -> bool:
    """True for 12-19 ASCII digits that pass Luhn and fit a brand's prefix and length."""
    return has_brand_prefix(digits) and luhn_valid(digits)


# Letters (category Lo) that render as nothing or a blank: the Hangul fillers, the only
# Default_Ignorable code points Unicode calls letters. Between digits they read as spaces.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")


def fold_digits(text: str) -> str:
    """Every Unicode digit as its ASCII digit, every blank letter as a space, every other
    character unchanged (same length)."""
    if text.isascii():
        return text
    out = []
    for char in text:
        if char.isascii():
            out.append(char)
        elif char in _BLANK_LETTERS:
            out.append(" ")
        else:
            value = unicodedata.digit(char, None)
            out.append(char if value is None else _ASCII_DIGITS[value])
    return "".join(out)


def _pan_spans(text: str) -> Iterator[tuple[int, int]]:
    """Spans (in `text`, already folded) of the candidates that are card numbers and not
    inside an identifier of a canonical shape (looked for only once a long run needs it)."""
    identifiers: list[tuple[int, int]] | None = None
    for run in _RUN.finditer(text):
        run_start, run_end = run.span()
        groups = [(g.start(), g.end()) for g in _GROUP.finditer(text, run_start, run_end)]
        # offsets[i]: digits before group i, so a candidate's length needs no string.
        offsets = [0]
        for start, end in groups:
            offsets.append(offsets[-1] + end - start)
        if offsets[-1] < MIN_PAN_DIGITS:
            continue
        if identifiers is None:
            identifiers = [m.span() for m in _IDENTIFIERS.finditer(text)]
        if any(s <= run_start and run_end <= e for s, e in identifiers):
            continue
        digits = "".join(text[start:end] for start, end in groups)
        for first in range(len(groups)):
            for last in range(first, len(groups)):
                length = offsets[last + 1] - offsets[first]
                if length > MAX_PAN_DIGITS:
                    break
                if length < MIN_PAN_DIGITS:
                    continue
                if not is_pan(digits[offsets[first] : offsets[last + 1]]):
                    continue
                start, end = groups[first][0], groups[last][1]
                if not any(s < end and start < e for s, e in identifiers):
                    yield start, end


def _may_hold_pan(folded: str) -> bool:
    """False when no digit run has MIN_PAN_DIGITS digits (most text: one C-level pass)."""
    if folded.isascii():
        squeezed = folded.encode().translate(None, _ASCII_SEPARATOR_BYTES)
        return _ADJACENT_DIGIT_BYTES.search(squeezed) is not None
    return _ADJACENT_DIGITS.search(_SEPARATOR.sub("", folded)) is not None


def contains_pan(text: str) -> bool:
    """True when the text holds anything resembling a card number."""
    folded = fold_digits(text)
    return _may_hold_pan(folded) and any(True for _ in _pan_spans(folded))


def pan_spans(text: str) -> list[tuple[int, int]]:
    """Where the card-number look-alikes are (start, end), in order."""
    folded = fold_digits(text)
    return sorted(_pan_spans(folded)) if _may_hold_pan(folded) else []


_JSON_ESCAPE = re.compile(r"\\(?:u[0-9A-Fa-f]{4}|.)")


def json_text_view(line: str) -> str:
    """A JSON text with each escape sequence (`\\t`, `\\n`, `\\"`, `\\u0009`...) blanked to
    spaces of the same length: what the escapes stand for are separators, while their letters
    (`t`, `n`, `u`) would end a digit run. Spans found in the view are spans of the line."""
    if "\\" not in line:
        return line
    return _JSON_ESCAPE.sub(lambda match: " " * len(match.group()), line)


def redact(text: str, spans: list[tuple[int, int]] | None = None) -> str:
    """The text with every card-number look-alike (or the given spans) replaced by REDACTED."""
    spans = pan_spans(text) if spans is None else spans
    if not spans:
        return text
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, last = [], 0
    for start, end in merged:
        out.append(text[last:start])
        out.append(REDACTED)
        last = end
    out.append(text[last:])
    return "".join(out)
