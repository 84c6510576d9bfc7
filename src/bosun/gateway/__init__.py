"""The gateway plane: principals, authorization, rate limits, PII, injection screening.

Not built yet. Until it is, a run's grants come from `Runtime.start(grants=...)` and the tool
pipeline enforces them (see `bosun.tools.pipeline`).
"""
