"""Behaviour drift per agent and prompt version: per-run features, baselines, statistical
tests on the latest window, alerts (``features.py``, ``baselines.py``, ``stats.py``,
``detector.py``)."""
