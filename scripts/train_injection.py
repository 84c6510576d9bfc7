"""Fit bosun's injection screen on the injection datasets and print its calibration report.

    .venv/bin/python scripts/train_injection.py [--check]

Writes ``src/bosun/gateway/injection/model.json`` (``--check`` only compares). Deterministic:
fixed seeds, hash-based splits, lbfgs, rounded weights; running it twice gives the same file.

The labelled set, split by *source group* so held-out attacks are texts the model never saw:

- deepset prompt-injections (train split) as given; near-duplicates (the set stacks the same
  override onto many benign prompts) are joined into one group by shared word 6-grams, and
  30% of the groups are held out.
- BIPIA emails: clean (negative) and with one attack text planted at a random sentence
  boundary (positive). 5 of the 15 attack categories and 15 of the 50 emails are held out;
  held-out documents pair a held-out email with a held-out attack.
- spikee: every same-language jailbreak wrapper x instruction, alone and planted in the seed
  email. 30% of the wrapper types and 2 of the 5 instruction types are held out; a
  composition is held out when either part is.
- banking77 customer messages (20 per intent, 30% of the intents held out): benign user input
  the screen must leave alone; deepset alone has few ordinary requests.

The model is fitted on *units*: attack texts alone and benign prompts as positives/negatives,
plus every window (as the screen forms them) of the clean emails and documents as negatives.
Sources are weighted equally per class. spikee wrappers and instructions are fitted
apart, each once (the compositions would repeat ten instructions hundreds of times), and a word
or n-gram enters the vocabulary only if it occurs in at least 3 source groups, so the words of
one particular attack are not memorised. Thresholds are chosen on out-of-fold scores of the fit
part (5 group folds): ``injection_at`` is the lowest score whose false-positive rate, averaged
over the benign sources, is at most 1%; ``suspicious_at`` the same at 5%. In-sample scores
would be optimistic and put the thresholds too low. The shipped model is fitted on the fit part
only, so the held-out report (and the test that gates on it) measures unseen attacks.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import re
import sys
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Runs without installing bosun; scripts/ for the datasets' location (also when imported by path).
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "scripts")]

from third_party import require  # noqa: E402

from bosun.gateway.injection.features import normalize, segments, token_features  # noqa: E402
from bosun.gateway.injection.rules import rule_hits  # noqa: E402
from bosun.gateway.injection.screen import (  # noqa: E402
    MIN_NORM,
    MODEL_PATH,
    WINDOW_WORDS,
    InjectionScreen,
)

SEED = 1729
HELD_OUT = 0.3
FOLDS = 5
C = 0.3
MIN_GROUPS = 3
MIN_WEIGHT = 0.02
FPR_INJECTION = 0.01
FPR_SUSPICIOUS = 0.05
BENIGN_SOURCES = ("deepset", "bipia-email", "banking77")


@dataclass(frozen=True)
class Doc:
    """One labelled text the screen is measured on."""

    text: str
    label: int
    source: str
    groups: tuple[str, ...]
    held_out: bool


@dataclass(frozen=True)
class Unit:
    """One text the model is fitted on; `windowed` ones give every window as a sample."""

    text: str
    label: int
    source: str
    groups: tuple[str, ...]
    windowed: bool = False


def _hash_fraction(key: str) -> float:
    digest = hashlib.sha256(f"{SEED}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _pick(items: Sequence[str], count: int, salt: str) -> set[str]:
    ordered = sorted(items)
    random.Random(f"{SEED}:{salt}").shuffle(ordered)
    return set(ordered[:count])


def _plant(context: str, attack: str, rng: random.Random) -> str:
    spots = [0, len(context)] + [m.end() for m in re.finditer(r"[.!?]\s+|\n", context)]
    at = rng.choice(sorted(set(spots)))
    return f"{context[:at]} {attack} {context[at:]}".strip()


def _deepset(data: Path) -> tuple[list[Doc], list[Unit]]:
    rows = _jsonl(data / "deepset-train.jsonl")
    parent = list(range(len(rows)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[tuple[str, ...], int] = {}
    for i, row in enumerate(rows):
        words = re.findall(r"\w+", row["text"].casefold())
        for k in range(max(1, len(words) - 5)):
            shingle = tuple(words[k : k + 6])
            j = owner.setdefault(shingle, i)
            parent[find(i)] = find(j)
    docs, units = [], []
    for i, row in enumerate(rows):
        group = f"deepset:{find(i)}"
        held = _hash_fraction(group) < HELD_OUT
        docs.append(Doc(row["text"], int(row["label"]), "deepset", (group,), held))
        if not held:
            units.append(Unit(row["text"], int(row["label"]), "deepset", (group,)))
    return docs, units


def _banking(data: Path) -> tuple[list[Doc], list[Unit]]:
    by_intent: dict[str, list[str]] = defaultdict(list)
    with (data.parent / "intents" / "banking77-train.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            by_intent[row["category"]].append(row["text"])
    docs, units = [], []
    for intent in sorted(by_intent):
        group = f"banking77:{intent}"
        held = _hash_fraction(group) < HELD_OUT
        for text in random.Random(f"{SEED}:{intent}").sample(by_intent[intent], 20):
            docs.append(Doc(text, 0, "banking77", (group,), held))
            if not held:
                units.append(Unit(text, 0, "banking77", (group,)))
    return docs, units


def _bipia(data: Path) -> tuple[list[Doc], list[Unit]]:
    emails = [row["context"] for row in _jsonl(data / "bipia-email-train.jsonl")]
    attacks: dict[str, list[str]] = json.loads(
        (data / "bipia-text-attack-train.json").read_text(encoding="utf-8")
    )
    held_emails = _pick([f"{i:03d}" for i in range(len(emails))], 15, "bipia-emails")
    held_cats = _pick(list(attacks), 5, "bipia-attacks")
    docs, units = [], []
    for i, email in enumerate(emails):
        egroup, eheld = f"bipia-email:{i}", f"{i:03d}" in held_emails
        docs.append(Doc(email, 0, "bipia-email", (egroup,), eheld))
        if not eheld:
            units.append(Unit(email, 0, "bipia-email", (egroup,), windowed=True))
        for cat in sorted(attacks):
            if (cat in held_cats) != eheld:
                continue
            for j, attack in enumerate(attacks[cat]):
                rng = random.Random(f"{SEED}:{i}:{cat}:{j}")
                text = _plant(email, attack, rng)
                docs.append(Doc(text, 1, "bipia-email", (egroup, f"bipia:{cat}"), eheld))
    for cat in sorted(set(attacks) - held_cats):
        units.extend(Unit(a, 1, "bipia-email", (f"bipia:{cat}",)) for a in attacks[cat])
    return docs, units


def _jsonl(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _spikee(data: Path) -> tuple[list[Doc], list[Unit]]:
    root = data / "spikee"
    jailbreaks: dict[str, dict[str, Any]] = {}
    instructions: dict[str, dict[str, Any]] = {}
    for seeds in sorted(root.glob("seeds-*")):
        for row in _jsonl(seeds / "jailbreaks.jsonl"):
            jailbreaks.setdefault(row["text"], row)
        for row in _jsonl(seeds / "instructions.jsonl"):
            instructions.setdefault(row["instruction"], row)
    document = _jsonl(root / "seeds-cybersec-2025-04" / "base_documents.jsonl")[1]["document"]
    held_jb = _pick(list({r["jailbreak_type"] for r in jailbreaks.values()}), 10, "spikee-jb")
    held_ins = _pick(list({r["instruction_type"] for r in instructions.values()}), 2, "spk-ins")
    docs = [Doc(document, 0, "spikee", ("spikee:document",), False)]
    units = [Unit(document, 0, "spikee", ("spikee:document",), windowed=True)]
    for jb in jailbreaks.values():
        for ins in instructions.values():
            if jb.get("lang", "en") != ins.get("lang", "en"):
                continue
            text = jb["text"].replace("<INSTRUCTION>", ins["instruction"])
            groups = (f"spikee-jb:{jb['jailbreak_type']}", f"spikee-ins:{ins['instruction_type']}")
            held = jb["jailbreak_type"] in held_jb or ins["instruction_type"] in held_ins
            rng = random.Random(f"{SEED}:{jb['id']}:{ins['id']}")
            docs.append(Doc(text, 1, "spikee", groups, held))
            docs.append(Doc(_plant(document, text, rng), 1, "spikee", groups, held))
    # Wrappers and instructions are fitted apart, each once: the hundreds of compositions
    # would repeat the same ten instructions and teach their words, not their shape.
    for jb in jailbreaks.values():
        if jb["jailbreak_type"] not in held_jb:
            wrapper = jb["text"].replace("<INSTRUCTION>", " ")
            units.append(Unit(wrapper, 1, "spikee", (f"spikee-jb:{jb['jailbreak_type']}",)))
    units.extend(
        Unit(r["instruction"], 1, "spikee", (f"spikee-ins:{r['instruction_type']}",))
        for r in instructions.values()
        if r["instruction_type"] not in held_ins
    )
    return docs, units


def build_corpus(data: Path | None = None) -> tuple[list[Doc], list[Unit]]:
    """Every labelled document (with its held-out flag) and the fit part's training units, from
    `data` (default: the datasets' injection/; exits saying so when it is missing)."""
    data = require("injection") / "injection" if data is None else data
    docs: list[Doc] = []
    units: list[Unit] = []
    for part in (_deepset, _bipia, _spikee, _banking):
        d, u = part(data)
        docs += d
        units += u
    return docs, units


# --- fitting --------------------------------------------------------------------------------


def _samples(unit: Unit) -> Iterable[tuple[list[str], set[str]]]:
    """The (text features, rules) samples of one unit, formed as the screen forms windows."""
    norm = normalize(unit.text)[0]
    segs = segments(norm)
    hits = rule_hits(norm, segs)
    feats = [token_features(tokens) for _, _, tokens in segs]
    if not unit.windowed:
        yield [f for fs in feats for f in fs], {name for h in hits for name, _ in h}
        return
    for i in range(len(segs)):
        words = 0
        for j in range(i, len(segs)):
            words += len(segs[j][2])
            if words > WINDOW_WORDS and j > i:
                break
            yield (
                [f for fs in feats[i : j + 1] for f in fs],
                {name for h in hits[i : j + 1] for name, _ in h},
            )


def fit(units: Sequence[Unit]) -> dict[str, Any]:
    """Fit the logistic regression; returns the model file's content (thresholds unset)."""
    import numpy as np
    from scipy.sparse import csr_matrix
    from sklearn.linear_model import LogisticRegression

    samples: list[tuple[Unit, list[str], set[str]]] = []
    groups_of: dict[str, set[str]] = defaultdict(set)
    for u in units:
        mine = [(u, f, r) for f, r in _samples(u)]
        for f in {f for _, feats, _ in mine for f in feats}:
            groups_of[f].update(u.groups)
        samples += mine
    vocab = sorted(f for f, g in groups_of.items() if len(g) >= MIN_GROUPS)
    rules = sorted({name for _, _, r in samples for name in r})
    index = {f: i for i, f in enumerate(vocab)}
    index.update({f"R:{name}": len(vocab) + k for k, name in enumerate(rules)})
    per_group = Counter((u.source, u.label) for u, _, _ in samples)
    rows, cols, vals, labels, weights = [], [], [], [], []
    for row, (unit, feats, hit) in enumerate(samples):
        scale = max(len(feats), MIN_NORM) ** -0.5
        for f, count in Counter(feats).items():
            if f in index:
                rows.append(row)
                cols.append(index[f])
                vals.append(count * scale)
        for name in sorted(hit):
            rows.append(row)
            cols.append(index[f"R:{name}"])
            vals.append(1.0)
        labels.append(unit.label)
        weights.append(len(samples) / (len(per_group) * per_group[(unit.source, unit.label)]))
    x = csr_matrix((vals, (rows, cols)), shape=(len(samples), len(index)))
    clf = LogisticRegression(C=C, max_iter=5000)
    clf.fit(x, np.array(labels), sample_weight=np.array(weights))
    coef = clf.coef_[0]
    return {
        "bias": round(float(clf.intercept_[0]), 4),
        "weights": {
            f: round(float(coef[i]), 4)
            for f, i in index.items()
            if not f.startswith("R:")
            if abs(coef[i]) >= MIN_WEIGHT
        },
        "rules": {name: round(float(coef[index[f"R:{name}"]]), 4) for name in rules},
    }


def _screen(model: dict[str, Any], tmp: Path, name: str) -> InjectionScreen:
    path = tmp / f"{name}.json"
    path.write_text(json.dumps({**model, "thresholds": _PLACEHOLDER}), encoding="utf-8")
    return InjectionScreen(model_path=path)


_PLACEHOLDER = {"suspicious_at": 0.5, "injection_at": 0.9}


def _fold(group: str) -> int:
    return int(_hash_fraction(f"fold:{group}") * FOLDS)


def out_of_fold(docs: Sequence[Doc], units: Sequence[Unit], tmp: Path) -> list[tuple[Doc, float]]:
    """Scores of the fit part's single-group documents by a model that never saw their group."""
    scored = []
    for k in range(FOLDS):
        train = [u for u in units if all(_fold(g) != k for g in u.groups)]
        screen = _screen(fit(train), tmp, f"fold{k}")
        for doc in docs:
            if not doc.held_out and len(doc.groups) == 1 and _fold(doc.groups[0]) == k:
                scored.append((doc, screen.screen(doc.text).score))
    return scored


def macro_fpr(scored: Sequence[tuple[Doc, float]], threshold: float) -> float:
    """False-positive rate at `threshold`, averaged over the benign sources."""
    rates = []
    for source in BENIGN_SOURCES:
        neg = [s for d, s in scored if d.source == source and d.label == 0]
        if neg:
            rates.append(sum(s >= threshold for s in neg) / len(neg))
    return sum(rates) / len(rates)


def choose_threshold(scored: Sequence[tuple[Doc, float]], target: float) -> float:
    """The lowest threshold (on a 0.001 grid) whose macro false-positive rate is <= target."""
    for step in range(1, 1000):
        if macro_fpr(scored, step / 1000) <= target:
            return step / 1000
    return 0.999


def evaluate(screen: InjectionScreen, docs: Iterable[Doc]) -> dict[str, dict[str, float]]:
    """TPR and FPR at both thresholds per source, pooled ("all") and source-averaged ("macro")."""
    scored: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for doc in docs:
        s = screen.screen(doc.text).score
        scored[doc.source].append((doc.label, s))
        scored["all"].append((doc.label, s))
    report: dict[str, dict[str, float]] = {}
    for source, pairs in sorted(scored.items(), key=lambda kv: (kv[0] == "all", kv[0])):
        row: dict[str, float] = {
            "pos": sum(lab for lab, _ in pairs),
            "neg": sum(1 - lab for lab, _ in pairs),
        }
        for name, t in (("suspicious", screen.suspicious_at), ("injection", screen.injection_at)):
            pos = [s for lab, s in pairs if lab == 1]
            neg = [s for lab, s in pairs if lab == 0]
            row[f"tpr@{name}"] = sum(s >= t for s in pos) / len(pos) if pos else float("nan")
            row[f"fpr@{name}"] = sum(s >= t for s in neg) / len(neg) if neg else float("nan")
        report[source] = row
    sources = [r for k, r in report.items() if k != "all"]
    report["macro"] = {
        key: _mean([r[key] for r in sources if r[key] == r[key]])
        for key in ("tpr@suspicious", "fpr@suspicious", "tpr@injection", "fpr@injection")
    }
    return report


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def format_report(report: dict[str, dict[str, float]]) -> str:
    """A fixed-width table of `evaluate`'s result."""
    lines = [
        f"{'source':<12} {'pos':>5} {'neg':>5}  {'TPR@susp':>8} {'FPR@susp':>8}"
        f"  {'TPR@inj':>8} {'FPR@inj':>8}"
    ]
    for source, row in report.items():
        counts = f"{int(row['pos']):>5} {int(row['neg']):>5}" if "pos" in row else " " * 11
        lines.append(
            f"{source:<12} {counts}  {row['tpr@suspicious']:>8.3f} {row['fpr@suspicious']:>8.3f}"
            f"  {row['tpr@injection']:>8.3f} {row['fpr@injection']:>8.3f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args()
    docs, units = build_corpus()
    with tempfile.TemporaryDirectory() as tmp:
        oof = out_of_fold(docs, units, Path(tmp))
        suspicious_at = choose_threshold(oof, FPR_SUSPICIOUS)
        injection_at = max(choose_threshold(oof, FPR_INJECTION), suspicious_at)
        model = fit(units)
    oof_pos = [s for d, s in oof if d.label == 1]
    calibration = {
        "seed": SEED,
        "method": "out-of-fold macro FPR over benign sources on the fit part",
        "targets": {"suspicious_at": FPR_SUSPICIOUS, "injection_at": FPR_INJECTION},
        "oof_fpr": {
            "suspicious_at": round(macro_fpr(oof, suspicious_at), 4),
            "injection_at": round(macro_fpr(oof, injection_at), 4),
        },
        "oof_deepset_tpr": {
            "suspicious_at": round(sum(s >= suspicious_at for s in oof_pos) / len(oof_pos), 4),
            "injection_at": round(sum(s >= injection_at for s in oof_pos) / len(oof_pos), 4),
        },
    }
    content = {
        "version": 1,
        "window_words": WINDOW_WORDS,
        **model,
        "thresholds": {"suspicious_at": suspicious_at, "injection_at": injection_at},
        "calibration": calibration,
    }
    text = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n"
    print(f"units: {len(units)}; vocabulary kept: {len(model['weights'])}; bias {model['bias']}")
    print("rule weights:", ", ".join(f"{k}={v}" for k, v in sorted(model["rules"].items())))
    print(f"thresholds: suspicious_at={suspicious_at} injection_at={injection_at}")
    print(f"calibration (fit part, out of fold): {json.dumps(calibration)}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.json"
        path.write_text(text, encoding="utf-8")
        screen = InjectionScreen(model_path=path)
        print("\nheld-out (unseen groups):")
        print(format_report(evaluate(screen, [d for d in docs if d.held_out])))
    if args.check:
        same = MODEL_PATH.exists() and MODEL_PATH.read_text(encoding="utf-8") == text
        print(f"\n{MODEL_PATH.name} {'matches' if same else 'DIFFERS from'} this run")
        sys.exit(0 if same else 1)
    MODEL_PATH.write_text(text, encoding="utf-8")
    print(f"\nwrote {MODEL_PATH.relative_to(ROOT)} ({len(text) // 1024} KB)")


if __name__ == "__main__":
    main()
