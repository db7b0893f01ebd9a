"""Packages the Lambda code and deploys the stacks with CloudFormation change sets."""
