"""Evaluation above the runtime: golden datasets, the promotion gate, online scoring, shadow runs.

``dataset.py`` (cases and assertions), ``sandbox.py`` (side effects recorded, never run),
``checks.py`` (assertions and the judge), ``gate.py`` (the McNemar gate), ``runner.py``
(`Evaluator`, `run_gate`), ``report.py``, ``online.py`` (signals and sampled judges on live
runs), ``shadow.py`` (a candidate version on copies of live inputs).
"""
