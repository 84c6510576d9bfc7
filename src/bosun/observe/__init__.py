"""Observation beside the runtime: metrics, cost caps and alerts, structured logs, tracing.

The runtime reaches these only through small protocols (`JournalObserver`, `SpendGuard`); they
read what the journal already holds and record nothing twice. ``metrics.py`` (Prometheus),
``cost.py`` (caps and spend reports), ``alerts.py`` (deduplicated alerts, signed notifier),
``logs.py`` (structlog JSON lines with run and trace ids), ``tracing.py`` / ``spans.py`` /
``span_builder.py`` (spans derived from the journal) and ``export.py`` (OTLP).
"""
