"""Lambda function code of the payment platform (Handler = handlers.<module>.handler)."""
