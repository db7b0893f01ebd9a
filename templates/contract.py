"""The request bodies the API checks before a function runs (docs/contract.md), built from the
functions' own field lists so the two cannot drift."""

from __future__ import annotations

from handlers.payments.validation import OPTIONAL_FIELDS, REQUIRED_FIELDS

JSON_SCHEMA_DRAFT = "http://json-schema.org/draft-04/schema#"
# Shape and JSON types only: API Gateway's validation errors then never echo a submitted
# value (a card number pasted into a field cannot come back out); every value rule is the
# function's, which reports all field errors at once and redacts card numbers.
PAYMENT_REQUEST_SCHEMA = {
    "$schema": JSON_SCHEMA_DRAFT,
    "title": "PaymentRequest",
    "type": "object",
    "required": list(REQUIRED_FIELDS),
    "properties": {name: {"type": "string"} for name in (*REQUIRED_FIELDS, *OPTIONAL_FIELDS)},
}
# What an operator fronting another backend relaxes the payment-api stack's check to.
JSON_OBJECT_SCHEMA = {"$schema": JSON_SCHEMA_DRAFT, "title": "JsonObject", "type": "object"}
