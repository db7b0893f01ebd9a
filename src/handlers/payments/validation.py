"""Validation of a payment request, shared by the validation and processing functions.

Pure: no I/O, no logging. Every problem is reported at once, one `FieldError`
per field and problem, in a stable order; messages never echo the submitted
value, so an error response can never carry card data back out.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from handlers.payments import cards

# API Gateway accepts up to 10 MB; a payment request is a few hundred bytes.
MAX_BODY_BYTES = 8 * 1024
MAX_DESCRIPTION_LENGTH = 140
TOKEN_PATTERN = re.compile(r"tok_[A-Za-z0-9_]{8,64}")
MERCHANT_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{2,63}")
# Plain decimal notation only: no sign, exponent, spaces or leading zeros.
AMOUNT_PATTERN = re.compile(r"(?:0|[1-9][0-9]{0,14})(?:\.[0-9]+)?")
CURRENCY_PATTERN = re.compile(r"[A-Z]{3}")
# Control, format, surrogate, private-use, unassigned, line and paragraph separators.
_NOT_TEXT = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})

REQUIRED_FIELDS = ("amount", "currency", "paymentToken", "merchantId")
OPTIONAL_FIELDS = ("description",)
KNOWN_FIELDS = frozenset(REQUIRED_FIELDS + OPTIONAL_FIELDS)

# ISO 4217 active codes (2024) whose minor unit is not 2; every other listed code has 2.
_MINOR_UNITS_NOT_TWO = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0, "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    "CLF": 4, "UYW": 4,
}  # fmt: skip
_ISO_4217_TWO_DECIMALS = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD
    BTN BWP BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN
    ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES
    KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK
    MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR
    SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD
    TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG""".split()
)
ISO_4217_MINOR_UNITS: dict[str, int] = {
    **{code: 2 for code in _ISO_4217_TWO_DECIMALS},
    **_MINOR_UNITS_NOT_TWO,
}


@dataclass(frozen=True, order=True)
class FieldError:
    """One problem with one field; `field` is `body` for problems with the whole request."""

    field: str
    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        """The JSON shape of the error."""
        return {"field": self.field, "code": self.code, "message": self.message}


class PaymentValidationError(ValueError):
    """The request is not a valid payment; carries every error found."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = sorted(set(errors))
        super().__init__(f"{len(self.errors)} validation error(s)")

    @property
    def contains_card_data(self) -> bool:
        """True when the request was refused for looking like it holds a card number."""
        return any(error.code == "card_data_not_allowed" for error in self.errors)


@dataclass(frozen=True)
class ValidationRules:
    """The configurable part of validation (from the function's environment)."""

    max_amount: Decimal
    allowed_currencies: frozenset[str]
    max_body_bytes: int = MAX_BODY_BYTES
    max_description_length: int = MAX_DESCRIPTION_LENGTH


@dataclass(frozen=True)
class Payment:
    """A validated, normalised payment request."""

    amount: Decimal
    currency: str
    payment_token: str
    merchant_id: str
    description: str | None = field(default=None)

    def to_dict(self) -> dict[str, str]:
        """The normalised request as JSON data; amount written with the currency's minor units."""
        data = {
            "amount": format_amount(self.amount, self.currency),
            "currency": self.currency,
            "paymentToken": self.payment_token,
            "merchantId": self.merchant_id,
        }
        if self.description is not None:
            data["description"] = self.description
        return data

    def fingerprint(self) -> str:
        """A stable hash of the normalised request, to tell a retry from a different payment."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def minor_units(currency: str) -> int:
    """The number of decimal places ISO 4217 gives a currency."""
    return ISO_4217_MINOR_UNITS[currency]


def format_amount(amount: Decimal, currency: str) -> str:
    """The amount written with exactly the currency's minor units."""
    return f"{amount:.{minor_units(currency)}f}"


def _card_data_error() -> PaymentValidationError:
    return PaymentValidationError(
        [
            FieldError(
                "body",
                "card_data_not_allowed",
                "The request appears to contain a card number; send a payment token instead.",
            )
        ]
    )


def _body_error(code: str, message: str) -> PaymentValidationError:
    return PaymentValidationError([FieldError("body", code, message)])


def decode_body(body: str | None, is_base64_encoded: bool, rules: ValidationRules) -> str:
    """The request body as text, refused when absent, too large or not UTF-8."""
    if body is None or body == "":
        raise _body_error("missing", "The request body is required and must be a JSON object.")
    too_large = _body_error(
        "too_large", f"The request body must be at most {rules.max_body_bytes} bytes."
    )
    # Check the encoded length first so an oversized body is never decoded.
    limit = rules.max_body_bytes * 4 // 3 + 4 if is_base64_encoded else rules.max_body_bytes * 4
    if len(body) > limit:
        raise too_large
    if is_base64_encoded:
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as error:
            raise _body_error("not_base64", "The request body is not valid base64.") from error
    else:
        raw = body.encode("utf-8", errors="surrogatepass")
    if len(raw) > rules.max_body_bytes:
        raise too_large
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _body_error("not_utf8", "The request body must be UTF-8 encoded JSON.") from error


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__("duplicate key")
        self.key = key


def _strings_in(value: Any) -> Iterator[str]:
    """Every string (keys included) inside parsed JSON."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def parse_json_object(text: str) -> dict[str, Any]:
    """The body parsed as a JSON object, refused when it holds anything like a card number.

    The raw text is scanned first (catches numbers, and digits split over several strings or
    keys), then every decoded string and key when the text has escapes (`\\u0034`, `\\t`).
    """
    if cards.contains_pan(text):
        raise _card_data_error()
    try:
        data = json.loads(
            text,
            parse_float=Decimal,
            parse_int=Decimal,
            parse_constant=_reject_constant,
            object_pairs_hook=_no_duplicates,
        )
    except _DuplicateKeyError as error:
        # Only our own field names are ever echoed: a submitted name may be anything.
        name = error.key if error.key in KNOWN_FIELDS else "body"
        message = "A field appears more than once."
        raise _body_error_for(name, "duplicate_field", message) from error
    except (ValueError, RecursionError) as error:
        raise _body_error("not_json", "The request body is not valid JSON.") from error
    if not isinstance(data, dict):
        raise _body_error("not_object", "The request body must be a JSON object.")
    # Escapes (`\\u0034`, `\\t`) can hide digits or separators from the raw scan.
    if "\\" in text and any(cards.contains_pan(s) for s in _strings_in(data)):
        raise _card_data_error()
    return data


def _body_error_for(name: str, code: str, message: str) -> PaymentValidationError:
    return PaymentValidationError([FieldError(name, code, message)])


_Checked = tuple[Any, list[FieldError]]


def _check_amount(value: Any, currency: str | None, rules: ValidationRules) -> _Checked:
    # A string, never a JSON number: no float rounding ever touches money (contract).
    if not isinstance(value, str):
        message = 'amount must be a string of decimal digits such as "12.50".'
        return None, [FieldError("amount", "wrong_type", message)]
    if not AMOUNT_PATTERN.fullmatch(value):
        message = 'amount must be written as plain decimal digits such as "12.50".'
        return None, [FieldError("amount", "malformed", message)]
    amount = Decimal(value)
    errors = []
    if amount <= 0:
        errors.append(FieldError("amount", "not_positive", "amount must be greater than zero."))
    if amount > rules.max_amount:
        message = f"amount must be at most {rules.max_amount}."
        errors.append(FieldError("amount", "too_large", message))
    places = len(value.partition(".")[2])
    if currency is not None and places > minor_units(currency):
        errors.append(
            FieldError(
                "amount",
                "too_many_decimals",
                f"{currency} amounts have at most {minor_units(currency)} decimal place(s).",
            )
        )
    return (amount if not errors else None), errors


def _check_currency(value: Any, rules: ValidationRules) -> _Checked:
    if not isinstance(value, str):
        return None, [FieldError("currency", "wrong_type", "currency must be a string.")]
    if not CURRENCY_PATTERN.fullmatch(value) or value not in ISO_4217_MINOR_UNITS:
        message = 'currency must be an ISO 4217 code such as "USD".'
        return None, [FieldError("currency", "malformed", message)]
    if value not in rules.allowed_currencies:
        allowed = ", ".join(sorted(rules.allowed_currencies))
        return None, [FieldError("currency", "not_allowed", f"currency must be one of {allowed}.")]
    return value, []


def _check_pattern(name: str, value: Any, pattern: re.Pattern[str], shape: str) -> _Checked:
    if not isinstance(value, str):
        return None, [FieldError(name, "wrong_type", f"{name} must be a string.")]
    if not pattern.fullmatch(value):
        return None, [FieldError(name, "malformed", f"{name} must be {shape}.")]
    return value, []


def _check_description(value: Any, rules: ValidationRules) -> _Checked:
    if not isinstance(value, str):
        return None, [FieldError("description", "wrong_type", "description must be a string.")]
    if len(value) > rules.max_description_length:
        return None, [
            FieldError(
                "description",
                "too_long",
                f"description must be at most {rules.max_description_length} characters.",
            )
        ]
    if any(unicodedata.category(char) in _NOT_TEXT for char in value):
        message = "description must not contain control characters or line breaks."
        return None, [FieldError("description", "malformed", message)]
    return value, []


def validate_payment(data: dict[str, Any], rules: ValidationRules) -> Payment:
    """The normalised payment, or PaymentValidationError listing every problem."""
    errors: list[FieldError] = []
    # An unknown field is reported by count and position, never by its submitted name.
    unknown = [str(position) for position, name in enumerate(data, 1) if name not in KNOWN_FIELDS]
    if unknown:
        message = (
            f"{len(unknown)} field(s) not in the payment schema, at position(s) "
            f"{', '.join(unknown)}; allowed: {', '.join(REQUIRED_FIELDS + OPTIONAL_FIELDS)}."
        )
        errors.append(FieldError("body", "unknown_fields", message))
    for name in REQUIRED_FIELDS:
        if name not in data:
            errors.append(FieldError(name, "missing", f"{name} is required."))

    currency, found = (None, [])
    if "currency" in data:
        currency, found = _check_currency(data["currency"], rules)
        errors += found
    amount = None
    if "amount" in data:
        amount, found = _check_amount(data["amount"], currency, rules)
        errors += found
    token = merchant = description = None
    if "paymentToken" in data:
        token, found = _check_pattern(
            "paymentToken", data["paymentToken"], TOKEN_PATTERN,
            "a payment token: 'tok_' followed by 8-64 letters, digits or '_'",
        )  # fmt: skip
        errors += found
    if "merchantId" in data:
        merchant, found = _check_pattern(
            "merchantId", data["merchantId"], MERCHANT_ID_PATTERN,
            "3-64 letters, digits, '_' or '-', starting with a letter or digit",
        )  # fmt: skip
        errors += found
    if data.get("description") is not None:
        description, found = _check_description(data["description"], rules)
        errors += found

    if errors:
        raise PaymentValidationError(errors)
    # No errors means every required field was present and valid: none of these is None.
    return Payment(
        amount=amount.quantize(Decimal(1).scaleb(-minor_units(currency))),
        currency=currency,
        payment_token=token,
        merchant_id=merchant,
        description=description,
    )


def parse_payment(body: str | None, is_base64_encoded: bool, rules: ValidationRules) -> Payment:
    """Body text of an API request -> validated payment (size, card-data scan, JSON, fields)."""
    return validate_payment(parse_json_object(decode_body(body, is_base64_encoded, rules)), rules)


def payment_from_dict(data: Any, rules: ValidationRules) -> Payment:
    """A payment from already-parsed data (a queued retry), validated again."""
    if not isinstance(data, dict):
        raise _body_error("not_object", "The payment must be a JSON object.")
    if any(cards.contains_pan(text) for text in _strings_in(data)):
        raise _card_data_error()
    return validate_payment(data, rules)
