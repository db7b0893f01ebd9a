"""A corpus of card-number layouts (issue 8's among them): each is refused with 400 by both
payment functions and appears in no log line, table item, queue message or response.

Whether a card number "appears" is judged by an oracle independent of the detector under
test: fold every Unicode digit (unicodedata.digit), drop everything that is not a digit, and
look for the number's digits in order.
"""

from __future__ import annotations

import base64
import json
import unicodedata

import pytest

from tests.handlers.conftest import FakeLambdaContext, api_event, body_of, new_key, payment_body


def luhn_complete(partial: str) -> str:
    """The partial number with its Luhn check digit appended (written here, not imported)."""
    total = 0
    for index, char in enumerate(reversed(partial)):
        value = int(char) * (2 if index % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return partial + str((10 - total % 10) % 10)


VISA = "4111111111111111"
PANS = {
    "visa": VISA,
    "visa-13": "4222222222222",
    "visa-19": luhn_complete("400000000000000000"),
    "mastercard": "5555555555554444",
    "mastercard-2": "2223003122003222",
    "amex": "378282246310005",
    "discover": "6011111111111117",
    "discover-65": luhn_complete("650000000000000"),
    "diners": "30569309025904",
    "jcb": "3530111333300000",
    "unionpay-19": luhn_complete("621234567890123456"),
    "maestro": "6759649826438453",
    "maestro-12": luhn_complete("50180000000"),
    "mir": luhn_complete("220000000000000"),
}


def grouped(pan: str, separator: str, size: int = 4) -> str:
    return separator.join(pan[i : i + size] for i in range(0, len(pan), size))


def digits_in(pan: str, zero: int) -> str:
    return "".join(chr(zero + int(d)) for d in pan)


# name -> (the text carrying the number, the number)
LAYOUTS: dict[str, tuple[str, str]] = {
    # issue 8's list
    "dots": (grouped(VISA, "."), VISA),
    "slashes": (grouped(VISA, "/"), VISA),
    "underscores": (grouped(VISA, "_"), VISA),
    "commas": (grouped(VISA, ","), VISA),
    "several spaces": (grouped(VISA, "     "), VISA),
    "spaced double dash": (grouped(VISA, " -- "), VISA),
    "U+2010 hyphen": (grouped(VISA, "\u2010"), VISA),
    "U+2212 minus": (grouped(VISA, "\u2212"), VISA),
    "glued to a word": ("Visa" + grouped(VISA, " "), VISA),
    "Arabic-Indic digits": (digits_in(VISA, 0x0660), VISA),
    "Devanagari digits": (digits_in(VISA, 0x0966), VISA),
    "fullwidth digits": (digits_in(VISA, 0xFF10), VISA),
    # more separators
    "plain": (VISA, VISA),
    "spaces": (grouped(VISA, " "), VISA),
    "dashes": (grouped(VISA, "-"), VISA),
    "U+2011 non-breaking hyphen": (grouped(VISA, "\u2011"), VISA),
    "U+2013 en dash": (grouped(VISA, "\u2013"), VISA),
    "U+2014 em dash": (grouped(VISA, "\u2014"), VISA),
    "U+00A0 no-break space": (grouped(VISA, "\u00a0"), VISA),
    "U+2009 thin space": (grouped(VISA, "\u2009"), VISA),
    "U+3000 ideographic space": (grouped(VISA, "\u3000"), VISA),
    "U+FF0D fullwidth hyphen": (grouped(digits_in(VISA, 0xFF10), "\uff0d"), VISA),
    "zero-width space between digits": ("\u200b".join(VISA), VISA),
    "tabs": (grouped(VISA, "\t"), VISA),
    # invisible "letters" (Hangul fillers: category Lo, rendered blank, so they read as spaces)
    "U+3164 Hangul filler": (grouped(VISA, "\u3164"), VISA),
    "U+FFA0 halfwidth Hangul filler": (grouped(VISA, "\uffa0"), VISA),
    "U+115F/U+1160 Hangul choseong and jungseong fillers": (grouped(VISA, "\u115f\u1160"), VISA),
    "every digit spaced": (" ".join(VISA), VISA),
    "every digit dashed": ("-".join(VISA), VISA),
    "pairs": (grouped(VISA, " ", 2), VISA),
    "triples": (grouped(VISA, " ", 3), VISA),
    "parentheses": (grouped(VISA, ") (").join("()"), VISA),
    "quoted groups": ('"' + grouped(VISA, '" "') + '"', VISA),
    "mixed separators": ("4111 1111-1111.1111", VISA),
    "between other numbers": ("12 " + grouped(VISA, " ") + " 34", VISA),
    "trailing punctuation": (grouped(VISA, "-") + ".", VISA),
    "letters on both sides": ("card" + VISA + "end", VISA),
    "letters around dashes": ("x" + grouped(VISA, "-") + "y", VISA),
    "in a sentence": ("please charge " + grouped(VISA, " ") + " thanks", VISA),
    # more scripts
    "Persian digits": (digits_in(VISA, 0x06F0), VISA),
    "Bengali digits": (digits_in(VISA, 0x09E6), VISA),
    "Thai digits": (digits_in(VISA, 0x0E50), VISA),
    "mathematical bold digits": (digits_in(VISA, 0x1D7CE), VISA),
    "mixed scripts": (
        "".join(chr(0x0660 + int(d)) if i % 2 else d for i, d in enumerate(VISA)),
        VISA,
    ),
    "superscript digits": ("".join("⁰¹²³⁴⁵⁶⁷⁸⁹"[int(d)] for d in VISA), VISA),
    "circled digits": ("".join("⓪①②③④⑤⑥⑦⑧⑨"[int(d)] for d in VISA), VISA),
    # other brands and lengths, as printed
    **{f"{name} plain": (pan, pan) for name, pan in PANS.items() if name != "visa"},
    "amex 4-6-5": ("3782 822463 10005", PANS["amex"]),
    "diners 4-6-4": ("3056 930902 5904", PANS["diners"]),
    "visa-19 4-4-4-4-3": (grouped(PANS["visa-19"], " "), PANS["visa-19"]),
    "mastercard-2 dashed": (grouped(PANS["mastercard-2"], "-"), PANS["mastercard-2"]),
}
# Where in the body the text goes: name -> function(text) -> (raw body, base64?)
PLACEMENTS = {
    "description": lambda text: (json.dumps(payment_body(description=text)), False),
    "field name": lambda text: (json.dumps({**payment_body(), text: "x"}), False),
    "unknown field": lambda text: (json.dumps({**payment_body(), "note": text}), False),
    "merchantId": lambda text: (json.dumps(payment_body(merchantId=text)), False),
    "paymentToken": lambda text: (json.dumps(payment_body(paymentToken="tok_" + text)), False),
    "escaped": lambda text: (json.dumps(payment_body(description=text), ensure_ascii=True), False),
    "base64": lambda text: (
        base64.b64encode(json.dumps(payment_body(description=text)).encode()).decode(),
        True,
    ),
}
CASES = (
    [(layout, "description") for layout in LAYOUTS]
    + [
        (layout, placement)
        for layout in ("plain", "spaces", "U+2010 hyphen", "Arabic-Indic digits", "dots")
        for placement in PLACEMENTS
        if placement != "description"
    ]
    + [("split over an array", "raw"), ("a JSON number", "raw"), ("unicode escapes", "raw")]
)
ESCAPED_VISA = "".join(f"\\u{ord(c):04x}" for c in VISA)
RAW = {
    "split over an array": (
        json.dumps({**payment_body(), "note": [VISA[i : i + 4] for i in range(0, 16, 4)]}),
        VISA,
    ),
    "a JSON number": (json.dumps({**payment_body(), "note": int(VISA)}), VISA),
    "unicode escapes": (
        json.dumps(payment_body(description=None))[:-1] + f', "description": "{ESCAPED_VISA}"}}',
        VISA,
    ),
}


def leaked(pan: str, text: str) -> bool:
    """True when the number's digits appear in order, whatever surrounds them."""
    digits = "".join(
        str(unicodedata.digit(char)) for char in text if unicodedata.digit(char, None) is not None
    )
    return pan in digits


def test_the_corpus_is_large_and_holds_the_issues_layouts():
    assert len(LAYOUTS) >= 50
    assert len(CASES) >= 80
    for written, pan in LAYOUTS.values():
        assert leaked(pan, written) or "Visa" in written  # the oracle sees each one


def raw_case(layout: str, placement: str) -> tuple[str, bool, str]:
    if placement == "raw":
        text, pan = RAW[layout]
        return text, False, pan
    written, pan = LAYOUTS[layout]
    body, encoded = PLACEMENTS[placement](written)
    return body, encoded, pan


@pytest.mark.parametrize(("layout", "placement"), CASES)
def test_refused_and_never_written_anywhere(processing, modules, captured_logs, layout, placement):
    body, encoded, pan = raw_case(layout, placement)
    validation = modules["validation"]
    for fixture, invoke in (
        ("apigw_rest_post_validate_payment",
         lambda e: validation.handler(e, FakeLambdaContext(function_name="payment-validator"))),
        ("apigw_rest_post_process_payment", processing.invoke),
    ):  # fmt: skip
        event = api_event(fixture, raw_body=body, headers={"Idempotency-Key": new_key()})
        event["isBase64Encoded"] = encoded
        response = invoke(event)
        assert response["statusCode"] == 400, (layout, placement, response["body"])
        codes = {d["code"] for d in body_of(response)["error"]["details"]}
        assert codes == {"card_data_not_allowed"}, (layout, placement, codes)
        assert not leaked(pan, json.dumps(response)), (layout, placement)
    assert processing.aws.scan_ids("") == []  # no table item of any kind
    assert processing.aws.queue_depth("FailedTransactionsQueue") == 0
    assert processing.ledger.items() == {}
    for line in captured_logs.getvalue().splitlines():
        assert not leaked(pan, line), (layout, placement, line)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_the_log_formatter_scrubs_every_layout_on_its_own(modules, captured_logs, layout):
    """The backstop: a card number written to the log by mistake (in a message, a value, a
    key, split over two values) never reaches the line."""
    written, pan = LAYOUTS[layout]
    logger = modules["processing"].logger
    logger.info(f"mistake {written}", extra={"field": written, written: 1})
    half = len(written) // 2
    # Split over two values of a list: no value holds the number, the line does.
    logger.info("split", extra={"parts": [written[:half], written[half:]]})
    lines = captured_logs.getvalue().splitlines()
    assert lines
    for line in lines:
        json.loads(line)  # still one JSON record per line
        assert not leaked(pan, line), (layout, line)
