"""Health checks of the platform's components and the safe recovery actions."""
