"""Pure builders of the CloudFormation templates: no AWS calls, no file writes."""
