"""PII detection quality and cost: precision/recall per entity type, and time to mask an e-mail.

Data: ``pii/presidio-synth-dev.json`` of the third-party data (``BOSUN_DATA_DIR``, default
``../shared/data``; 750 synthetic texts from 201 templates, labelled by presidio-research).
The texts are split by *template* (a hash of ``template_id``), not by row: the "tuning" half
is where patterns may be looked at and adjusted, and the tables are printed for the other
half, whose templates appear nowhere in the tuning half, and for all texts.

Matching rule: a detected span counts as a true positive when it overlaps, by at least one
character, a gold span of the same type that no other detection has matched; recall counts the
gold spans so matched. The dataset's GPE is bosun's LOCATION. Gold labels with no bosun detector
(dates, titles, ages, ...) are listed with their counts and recall 0 in the "all labelled PII"
row; a detection that overlaps only such a span counts as a false positive of its own type.

Two detectors are measured: the pattern layer alone (always on) and, when the ``ner`` extra is
installed, with spaCy's names, places and organisations.

Timing: a ~10 KB e-mail made of the BIPIA e-mails in its ``injection/`` with some
labelled PII texts between them; the median and p99 of `PiiDetector.detect` and of
`PiiVault.mask` (with an empty vault, so every value is encrypted).

    python bench/gateway_pii.py
"""

from __future__ import annotations

import hashlib
import json
import secrets
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from bosun.gateway import ner
from bosun.gateway.pii import WITH_NER, PiiDetector, PiiSpan
from bosun.gateway.vault import PiiVault, VaultCipher

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from third_party import data_dir, require

DATA = data_dir()
DATASET = DATA / "pii" / "presidio-synth-dev.json"
EMAILS = DATA / "injection" / "bipia-email-train.jsonl"

# The dataset's labels whose name differs from ours.
LABELS = {"GPE": "LOCATION"}


def tuning_half(sample: dict[str, object]) -> bool:
    """Whether a text's template is in the half that patterns may be tuned on."""
    digest = hashlib.sha256(f"pii-template:{sample['template_id']}".encode()).digest()
    return digest[0] < 128


def _gold(sample: dict[str, object]) -> list[tuple[str, int, int]]:
    spans = sample["spans"]
    assert isinstance(spans, list)
    return [(s["entity_type"], s["start_position"], s["end_position"]) for s in spans]


def _score(
    detector: PiiDetector, samples: list[dict[str, object]]
) -> tuple[Counter[str], Counter[str], Counter[str], Counter[str]]:
    """Per type: true positives, detections, gold spans, gold spans found."""
    tp: Counter[str] = Counter()
    predicted: Counter[str] = Counter()
    gold_count: Counter[str] = Counter()
    found: Counter[str] = Counter()
    for sample in samples:
        text = sample["full_text"]
        assert isinstance(text, str)
        gold = [(LABELS.get(label, label), start, end) for label, start, end in _gold(sample)]
        gold_count.update(label for label, _, _ in gold)
        matched: set[int] = set()
        for span in detector.detect(text):
            predicted[span.entity] += 1
            for i, (label, start, end) in enumerate(gold):
                if i not in matched and label == span.entity and _overlaps(span, start, end):
                    matched.add(i)
                    tp[span.entity] += 1
                    break
        found.update(gold[i][0] for i in matched)
    return tp, predicted, gold_count, found


def _overlaps(span: PiiSpan, start: int, end: int) -> bool:
    return span.start < end and start < span.end


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def _fmt(x: float | None) -> str:
    return "   -" if x is None else f"{x:.2f}"


def _table(detector: PiiDetector, samples: list[dict[str, object]]) -> None:
    tp, predicted, gold, found = _score(detector, samples)
    print(f"{'entity':<16}{'gold':>6}{'found':>7}{'pred':>6}{'P':>7}{'R':>7}{'F1':>7}")
    for entity in sorted(detector.entities):
        p = _ratio(tp[entity], predicted[entity])
        r = _ratio(found[entity], gold[entity])
        f1 = 2 * p * r / (p + r) if p is not None and r is not None and p + r else None
        print(
            f"{entity:<16}{gold[entity]:>6}{found[entity]:>7}{predicted[entity]:>6}"
            f"{_fmt(p):>7}{_fmt(r):>7}{_fmt(f1):>7}"
        )
    supported_gold = sum(gold[e] for e in detector.entities)
    print(
        f"{'supported types':<16}{supported_gold:>6}{sum(found.values()):>7}"
        f"{sum(predicted.values()):>6}{_fmt(_ratio(sum(tp.values()), sum(predicted.values()))):>7}"
        f"{_fmt(_ratio(sum(found.values()), supported_gold)):>7}"
    )
    print(
        f"{'all labelled PII':<16}{sum(gold.values()):>6}{sum(found.values()):>7}{'':>6}{'':>7}"
        f"{_fmt(_ratio(sum(found.values()), sum(gold.values()))):>7}"
    )
    missing = {label: n for label, n in gold.items() if label not in detector.entities}
    print(
        "no detector (recall 0, excluded from the per-type rows): "
        + ", ".join(f"{label} {n}" for label, n in sorted(missing.items(), key=lambda x: -x[1]))
    )


def _email_10kb(samples: list[dict[str, object]]) -> str:
    emails = [json.loads(line)["context"] for line in EMAILS.read_text().splitlines() if line]
    parts: list[str] = []
    size = 0
    for i in range(10_000):
        email = emails[i % len(emails)]
        pii = samples[i % len(samples)]["full_text"]
        assert isinstance(pii, str)
        parts.extend([email, pii])
        size += len(email) + len(pii) + 2
        if size >= 10_240:
            break
    return "\n\n".join(parts)[:10_240]


def _timings(fn: object, text: str, n: int) -> tuple[float, float]:
    assert callable(fn)
    times: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn(text)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


def run() -> None:
    """Print the quality tables and the timings."""
    require("pii", "injection")
    lazy = "presidio_analyzer" not in sys.modules
    detector = PiiDetector()
    t0 = time.perf_counter()
    detector.load()
    load_s = time.perf_counter() - t0
    samples: list[dict[str, object]] = json.loads(DATASET.read_text())
    held = [s for s in samples if not tuning_half(s)]
    templates = len({s["template_id"] for s in held})

    print(f"PII detection on {DATASET.name}: {len(samples)} texts")
    print("match: same type and >= 1 character of overlap; each gold span matched once")
    print(f"\n-- pattern layer, {len(held)} texts of {templates} templates outside the tuning half")
    _table(detector, held)
    print(f"\n-- pattern layer, all {len(samples)} texts")
    _table(detector, samples)
    named = None
    if ner.installed():
        named = PiiDetector(entities=WITH_NER)
        t0 = time.perf_counter()
        named.load()
        ner_load_s = time.perf_counter() - t0
        print(f"\n-- with spaCy NER (loaded in {ner_load_s * 1000:.0f} ms), the held-out half")
        _table(named, held)
        print(f"\n-- with spaCy NER, all {len(samples)} texts")
        _table(named, samples)
    else:
        print("\n(spaCy NER not installed: pip install 'bosun[ner]' for names and places)")

    text = _email_10kb(samples)
    vault = PiiVault(detector, VaultCipher(secrets.token_bytes(32)))
    n_spans = len(detector.detect(text))
    detect_med, detect_p99 = _timings(detector.detect, text, 200)
    mask_med, mask_p99 = _timings(lambda t: vault.mask("run-bench", t, {}), text, 200)
    print()
    print(f"importing bosun.gateway imports Presidio: {'no' if lazy else 'yes'}")
    print(f"first load (imports Presidio, builds recognizers): {load_s * 1000:.0f} ms")
    print(f"{len(text)}-character e-mail, {n_spans} spans:")
    print(f"  detect  median {detect_med:.2f} ms   p99 {detect_p99:.2f} ms")
    print(f"  mask    median {mask_med:.2f} ms   p99 {mask_p99:.2f} ms")
    if named is not None:
        ner_med, ner_p99 = _timings(named.detect, text, 30)
        print(f"  detect with NER  median {ner_med:.2f} ms   p99 {ner_p99:.2f} ms")
    print("worst cases (100 KB each, one run; the gateway's input size limit bounds these):")
    for name, hostile in [
        ("digits and spaces", "1 " * 50_000),
        ("an address and a phone number every 20 characters", "a@b.co 415-555-0132 " * 5_000),
        ("NUL bytes", "\x00" * 100_000),
    ]:
        t0 = time.perf_counter()
        detector.detect(hostile)
        print(f"  {name}: {(time.perf_counter() - t0) * 1000:.0f} ms")
    sys.stdout.flush()


if __name__ == "__main__":
    run()
