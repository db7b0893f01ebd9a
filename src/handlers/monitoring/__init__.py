"""Health checks of the platform's components and the safe recovery actions."""

# Emitted once by every scheduled run that completes (count 1, dimension service): the
# template's heartbeat alarm watches it, so runs that stop are noticed.
SCHEDULED_RUN_METRIC = "ScheduledRunCompleted"
