"""Payment domain: card-number detection, validation, provider adapter, store, service."""
