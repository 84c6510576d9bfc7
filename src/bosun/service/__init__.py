"""The business plane: REST API, workers, dashboard. Not built yet; the CLI is in `bosun.cli`."""
