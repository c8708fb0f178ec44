"""gunicorn configuration for tests/test_metrics_gunicorn.py, as README "Observability"
shows it: an exited worker's live series are dropped from the scrape."""

from corsadmin.metrics import child_exit  # noqa: F401
