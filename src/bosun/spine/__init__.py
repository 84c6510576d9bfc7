"""The spine: tracing, metrics, cost, prompt registry, evals.

Not built yet. Cost and token usage per call are already journaled with each model step
(see `bosun.data.schema`, the `usage` view).
"""
