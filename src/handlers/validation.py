"""The validation function: POST /validate-payment, no side effects.

200 with the normalised request, or 400 with every field error at once.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from handlers import api
from handlers.config import ApiConfig, load_api
from handlers.observability import build_logger, build_metrics
from handlers.payments.validation import parse_payment

CONFIG: ApiConfig = load_api(os.environ)
logger = build_logger(CONFIG.common)
metrics = build_metrics(CONFIG.common)
router = api.Router(logger, metrics, CONFIG.common.cors_allowed_origin)


@router.route("POST", "/validate-payment")
def post_validate_payment(request: api.Request) -> api.Response:
    """Check a payment request: 200 with the normalised request."""
    payment = parse_payment(request.body, request.is_base64_encoded, CONFIG.rules)
    metrics.add_metric(name="PaymentValid", unit=MetricUnit.Count, value=1)
    logger.info("payment request valid", extra={"currency": payment.currency})
    return api.Response(200, {"valid": True, "payment": payment.to_dict()})


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda entry point: API Gateway REST proxy requests (any event gets an answer)."""
    return router.handle(event, context)
