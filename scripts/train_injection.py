"""Fit bosun's injection screen, choose its thresholds, and measure it by source.

    .venv/bin/python scripts/train_injection.py [--check] [--no-loso]

Writes ``src/bosun/gateway/injection/model.json`` (``--check`` only compares). Deterministic:
fixed seeds, hash-based splits, lbfgs, rounded weights; running it twice gives the same file.
The labelled sources and their held-out parts are described in ``injection_corpus.py``.

The model is fitted on *units*: attack texts alone and benign prompts as positives/negatives,
plus every window (as the screen forms them) of the clean e-mails and documents as negatives.
Source families are weighted equally per class (the phrase table's languages are one family).
spikee wrappers and instructions are fitted apart, each once (the compositions would repeat
ten instructions hundreds of times), and a word or n-gram enters the vocabulary only if it
occurs in at least 3 source groups, so the words of one particular attack are not memorised.

Thresholds are chosen on out-of-fold scores of the fit part (5 group folds):
``injection_at`` is the lowest score whose false-positive rate, averaged over the benign
source families, is at most 1%; ``suspicious_at`` the same at 5%. The shipped model is fitted
on the fit part only, so the held-out report (and the test that gates on it) measures texts,
attack families and phrase-table items it never saw.

Leave-one-source-out (`leave_one_source_out`, printed unless ``--no-loso``): for each source
family, and for each language of the phrase table, a model is fitted on everything else and
scores that source. Operating points for those scores are chosen on the pooled left-out
benign scores (macro FPR <= 1% and <= 5%), so every figure in that table, false positives
included, is for a source the scoring model never saw.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Runs without installing bosun; scripts/ for the datasets' location (also when imported by path).
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "scripts")]

from injection_corpus import (  # noqa: E402
    LANGUAGES,
    OWN_SETS,
    SEED,
    THIRD_PARTY,
    Doc,
    Unit,
    encoded,
    family,
    hash_fraction,
)
from third_party import require  # noqa: E402

from bosun.gateway.injection.features import normalize, segments, token_features  # noqa: E402
from bosun.gateway.injection.rules import rule_hits  # noqa: E402
from bosun.gateway.injection.screen import (  # noqa: E402
    MIN_NORM,
    MODEL_PATH,
    WINDOW_WORDS,
    InjectionScreen,
    _parse,
)

# The embedding half (injection_embedding) is imported where it is used: without the `embed`
# extra the n-gram model still fits.

__all__ = ["Doc", "Unit", "build_corpus", "evaluate", "fit", "format_report"]

FOLDS = 5
C = 0.3
MIN_GROUPS = 3
MIN_WEIGHT = 0.02
FPR_INJECTION = 0.01
FPR_SUSPICIOUS = 0.05
BENIGN_FAMILIES = (
    "deepset",
    "bipia-email",
    "banking77",
    "overdefence",
    "task-style",
    "multilingual",
)
"""The families whose benign texts set the false-positive rate (spikee has one document)."""


def build_corpus(data: Path | None = None) -> tuple[list[Doc], list[Unit]]:
    """Every labelled document (with its held-out flag) and every training unit (likewise),
    from `data` (default: the datasets' injection/; exits saying so when it is missing) and
    the sets in bench/data/injection."""
    data = require("injection") / "injection" if data is None else data
    docs: list[Doc] = []
    units: list[Unit] = []
    for part in (*THIRD_PARTY, *OWN_SETS):
        d, u = part(data)
        docs += d
        units += u
    return docs + encoded(docs), units


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
    per_group = Counter((family(u.source), u.label) for u, _, _ in samples)
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
        key = (family(unit.source), unit.label)
        weights.append(len(samples) / (len(per_group) * per_group[key]))
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


def _screen(model: dict[str, Any], tmp: Path, name: str, embedder: Any = None) -> InjectionScreen:
    path = tmp / f"{name}.json"
    path.write_text(json.dumps({**model, "thresholds": _PLACEHOLDER}), encoding="utf-8")
    _parse.cache_clear()  # the same path holds another model each time (mtimes may tie)
    if embedder is None:
        return InjectionScreen(model_path=path)
    return InjectionScreen(model_path=path, embedder=embedder)


_PLACEHOLDER = {"suspicious_at": 0.5, "injection_at": 0.9}


def _fold(group: str) -> int:
    return int(hash_fraction(f"fold:{group}") * FOLDS)


Triple = tuple[Doc, float, float]
"""A document, its n-gram logit and its embedding head's logit."""


def _logit(p: float) -> float:
    p = min(max(p, 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p))


def _triples(
    model: dict[str, Any], head: dict[str, Any], docs: Sequence[Doc], embedder: Any, tmp: Path
) -> list[Triple]:
    """(doc, n-gram logit, embedding logit) for `docs` under one fitted model and head."""
    with_head = {**model, "embedding": {**head, "blend": [1.0, 0.0, 0.0]}}
    plain = _screen(model, tmp, "plain")
    semantic = _screen(with_head, tmp, "semantic", embedder)
    return [
        (
            d,
            _logit(plain.screen(d.text).score),
            semantic.embedding_logit(normalize(d.text)[0]),
        )
        for d in docs
    ]


def out_of_fold(
    docs: Sequence[Doc], units: Sequence[Unit], tmp: Path, embedder: Any = None
) -> tuple[list[tuple[Doc, float]], list[Triple]]:
    """Scores of the fit part's documents by a model that never saw their (first) group; with
    an embedder, also n-gram and head logits of a sample of them."""
    scored = []
    triples: list[Triple] = []
    fit_units = [u for u in units if not u.held_out]
    for k in range(FOLDS):
        train = [u for u in fit_units if all(_fold(g) != k for g in u.groups)]
        model = fit(train)
        screen = _screen(model, tmp, f"fold{k}")
        mine = []
        for doc in docs:
            single = len(doc.groups) == 1 or doc.source.startswith("ml-")
            ours = single and _fold(doc.groups[0]) == k
            if ours and doc.source != "encoded" and not doc.held_out:
                mine.append(doc)
                scored.append((doc, screen.screen(doc.text).score))
        if embedder is not None:
            from injection_embedding import PER_SOURCE, fit_head, sample

            picked = sample(mine, f"oof{k}", PER_SOURCE // 2)
            triples += _triples(model, fit_head(train, embedder), picked, embedder, tmp)
            embedder.save()
    return scored, triples


def macro_fpr(scored: Sequence[tuple[Doc, float]], threshold: float) -> float:
    """False-positive rate at `threshold`, averaged over the benign source families."""
    return _MacroFpr(scored)(threshold)


class _MacroFpr:
    """`macro_fpr` for many thresholds over the same scores (sorted once, then bisected)."""

    def __init__(self, scored: Sequence[tuple[Doc, float]]) -> None:
        self.negatives = [
            sorted(s for d, s in scored if family(d.source) == fam and d.label == 0)
            for fam in BENIGN_FAMILIES
        ]
        self.negatives = [n for n in self.negatives if n]

    def __call__(self, threshold: float) -> float:
        rates = [(len(n) - bisect_left(n, threshold)) / len(n) for n in self.negatives]
        return sum(rates) / len(rates)


def choose_threshold(scored: Sequence[tuple[Doc, float]], target: float) -> float:
    """The lowest threshold (on a 0.001 grid) whose macro false-positive rate is <= target."""
    fpr = _MacroFpr(scored)
    for step in range(1, 1000):
        if fpr(step / 1000) <= target:
            return step / 1000
    return 0.999


def leave_one_source_out(
    units: Sequence[Unit], docs: Sequence[Doc], embedder: Any = None
) -> tuple[list[tuple[Doc, float]], list[Triple]]:
    """Every document scored by a model fitted without its source (each language of the
    phrase table counts as a source; the `encoded` set is measured elsewhere); with an
    embedder, also the n-gram and head logits of a sample of them."""
    scored: list[tuple[Doc, float]] = []
    triples: list[Triple] = []
    held_sources = sorted({family(d.source) for d in docs} - {"multilingual", "encoded"})
    held_sources += [f"ml-{lang}" for lang in LANGUAGES]
    with tempfile.TemporaryDirectory() as tmp:
        for source in held_sources:

            def out(name: str, source: str = source) -> bool:
                return name == source or family(name) == source

            train = [u for u in units if not out(u.source)]
            model = fit(train)
            screen = _screen(model, Path(tmp), "loso")
            left = [d for d in docs if out(d.source)]
            scored += [(d, screen.screen(d.text).score) for d in left]
            if embedder is not None:
                from injection_embedding import fit_head, sample

                head = fit_head(train, embedder)
                triples += _triples(model, head, sample(left, "loso"), embedder, Path(tmp))
                embedder.save()
            print(f"  left out {source}: fitted on {len(train)} units", file=sys.stderr)
    return scored, triples


# --- reports --------------------------------------------------------------------------------


def rates(scored: Iterable[tuple[Doc, float]], threshold: float) -> dict[str, dict[str, float]]:
    """Per source, pooled ("all"), and macro over sources: pos, neg, TPR and FPR."""
    by: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for doc, s in scored:
        by[doc.source].append((doc.label, s))
        by["all"].append((doc.label, s))
    out: dict[str, dict[str, float]] = {}
    for source, pairs in sorted(by.items(), key=lambda kv: (kv[0] == "all", kv[0])):
        pos = [s for lab, s in pairs if lab == 1]
        neg = [s for lab, s in pairs if lab == 0]
        out[source] = {
            "pos": len(pos),
            "neg": len(neg),
            "tpr": sum(s >= threshold for s in pos) / len(pos) if pos else float("nan"),
            "fpr": sum(s >= threshold for s in neg) / len(neg) if neg else float("nan"),
        }
    return out


def evaluate(screen: InjectionScreen, docs: Iterable[Doc]) -> dict[str, dict[str, float]]:
    """TPR and FPR at both thresholds per source, pooled ("all") and source-averaged ("macro")."""
    scored = [(doc, screen.screen(doc.text).score) for doc in docs]
    return evaluate_scores(scored, screen.suspicious_at, screen.injection_at)


def evaluate_scores(
    scored: Sequence[tuple[Doc, float]], suspicious_at: float, injection_at: float
) -> dict[str, dict[str, float]]:
    """`evaluate` for scores already computed."""
    susp, inj = rates(scored, suspicious_at), rates(scored, injection_at)
    report = {
        source: {
            "pos": row["pos"],
            "neg": row["neg"],
            "tpr@suspicious": row["tpr"],
            "fpr@suspicious": row["fpr"],
            "tpr@injection": inj[source]["tpr"],
            "fpr@injection": inj[source]["fpr"],
        }
        for source, row in susp.items()
    }
    sources = [r for k, r in report.items() if k != "all"]
    report["macro"] = {
        key: _mean([r[key] for r in sources if r[key] == r[key]])
        for key in ("tpr@suspicious", "fpr@suspicious", "tpr@injection", "fpr@injection")
    }
    return report


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def format_report(
    report: dict[str, dict[str, float]], names: tuple[str, str] = ("susp", "inj")
) -> str:
    """A fixed-width table of `evaluate`'s result."""
    a, b = names
    lines = [
        f"{'source':<12} {'pos':>5} {'neg':>5}  {'TPR@' + a:>9} {'FPR@' + a:>9}"
        f"  {'TPR@' + b:>9} {'FPR@' + b:>9}"
    ]
    for source, row in report.items():
        counts = f"{int(row['pos']):>5} {int(row['neg']):>5}" if "pos" in row else " " * 11
        lines.append(
            f"{source:<12} {counts}  {row['tpr@suspicious']:>9.3f} {row['fpr@suspicious']:>9.3f}"
            f"  {row['tpr@injection']:>9.3f} {row['fpr@injection']:>9.3f}"
        )
    return "\n".join(lines).replace("nan", "  -")


def loso_report(scored: Sequence[tuple[Doc, float]]) -> str:
    """The leave-one-source-out table at its own FPR <= 5% and <= 1% operating points, and the
    point where the over-defence set's FPR is <= 5%."""
    t5 = choose_threshold(scored, FPR_SUSPICIOUS)
    t1 = max(choose_threshold(scored, FPR_INJECTION), t5)
    over = sorted(s for d, s in scored if d.source == "overdefence")
    t_od = over[min(len(over) - 1, int(0.95 * len(over)))] + 1e-9 if over else 1.0
    lines = [
        f"operating points on pooled left-out benign scores: FPR<=5% at {t5}, FPR<=1% at {t1}",
        format_report(evaluate_scores(scored, t5, t1), ("5%", "1%")),
    ]
    attacks = [s for d, s in scored if d.label == 1]
    tpr = sum(s >= t_od for s in attacks) / len(attacks)
    ml = [s for d, s in scored if d.label == 1 and d.source.startswith("ml-")]
    lines.append(
        f"at over-defence FPR <= 5% (threshold {t_od:.3f}): TPR {tpr:.3f} over all left-out "
        f"attacks, {sum(s >= t_od for s in ml) / max(1, len(ml)):.3f} over the phrase table"
    )
    return "\n".join(lines)


def _embedding_part(oof: list[Triple], fit_units: Sequence[Unit], embedder: Any) -> dict[str, Any]:
    """The model file's ``embedding`` entry: head, blend and the blended score's thresholds."""
    from injection_embedding import blended, fit_blend, fit_head

    blend = fit_blend(oof)
    scores = [(d, blended(blend, n, e)) for d, n, e in oof]
    suspicious_at = choose_threshold(scores, FPR_SUSPICIOUS)
    injection_at = max(choose_threshold(scores, FPR_INJECTION), suspicious_at)
    print(f"embedding blend {blend}; thresholds {suspicious_at} / {injection_at}")
    return {
        **fit_head(fit_units, embedder),
        "blend": blend,
        "thresholds": {"suspicious_at": suspicious_at, "injection_at": injection_at},
        "calibration": f"out-of-fold blended scores of {len(oof)} sampled fit-part documents",
    }


def _calibration(oof: Sequence[tuple[Doc, float]], susp: float, inj: float) -> dict[str, Any]:
    pos = [s for d, s in oof if d.label == 1]
    return {
        "seed": SEED,
        "method": "out-of-fold macro FPR over benign source families on the fit part",
        "targets": {"suspicious_at": FPR_SUSPICIOUS, "injection_at": FPR_INJECTION},
        "oof_fpr": {
            "suspicious_at": round(macro_fpr(oof, susp), 4),
            "injection_at": round(macro_fpr(oof, inj), 4),
        },
        "oof_tpr": {
            "suspicious_at": round(sum(s >= susp for s in pos) / len(pos), 4),
            "injection_at": round(sum(s >= inj for s in pos) / len(pos), 4),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    parser.add_argument("--no-loso", action="store_true", help="skip leave-one-source-out")
    parser.add_argument("--no-embed", action="store_true", help="fit no embedding head")
    parser.add_argument("--embed-cache", type=Path, help="keep computed vectors in this file")
    args = parser.parse_args()
    docs, units = build_corpus()
    fit_units = [u for u in units if not u.held_out]
    embedder = None
    if not args.no_embed:
        from injection_embedding import CachedEmbedder

        embedder = CachedEmbedder(args.embed_cache)
    with tempfile.TemporaryDirectory() as tmp:
        oof, oof_triples = out_of_fold(docs, units, Path(tmp), embedder)
        suspicious_at = choose_threshold(oof, FPR_SUSPICIOUS)
        injection_at = max(choose_threshold(oof, FPR_INJECTION), suspicious_at)
        model = fit(fit_units)
    content = {
        "version": 2,
        "window_words": WINDOW_WORDS,
        **model,
        "thresholds": {"suspicious_at": suspicious_at, "injection_at": injection_at},
        "calibration": _calibration(oof, suspicious_at, injection_at),
    }
    if embedder is not None:
        content["embedding"] = _embedding_part(oof_triples, fit_units, embedder)
        embedder.save()
    text = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n"
    print(f"units: {len(fit_units)}; vocabulary: {len(model['weights'])}; bias {model['bias']}")
    print("rule weights:", ", ".join(f"{k}={v}" for k, v in sorted(model["rules"].items())))
    print(f"thresholds: suspicious_at={suspicious_at} injection_at={injection_at}")
    print(f"calibration (fit part, out of fold): {json.dumps(content['calibration'])}")
    held = [d for d in docs if d.held_out]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.json"
        path.write_text(text, encoding="utf-8")
        screen = InjectionScreen(model_path=path)
        print("\nheld-out (unseen texts, attack families and items), at the shipped thresholds:")
        print(format_report(evaluate(screen, held)))
        if embedder is not None:
            from injection_embedding import sample

            with_embedding = InjectionScreen(model_path=path, embedder=embedder)
            picked = sample(held, "held")
            print(f"\nthe same with embeddings ({len(picked)} sampled documents):")
            print(format_report(evaluate(with_embedding, picked)))
            print("and without, on that sample:")
            print(format_report(evaluate(screen, picked)))
            embedder.save()
    if not args.no_loso:
        measured = [d for d in docs if d.source != "encoded"]
        scored, triples = leave_one_source_out(units, measured, embedder)
        print("\nleave-one-source-out:")
        print(loso_report(scored))
        if embedder is not None:
            from injection_embedding import blended

            blend = content["embedding"]["blend"]
            print(f"\nleave-one-source-out with embeddings ({len(triples)} sampled documents):")
            print(loso_report([(d, blended(blend, n, e)) for d, n, e in triples]))
            print("and without, on that sample:")
            print(loso_report([(d, 1 / (1 + math.exp(-n))) for d, n, _ in triples]))
    if args.check:
        same = MODEL_PATH.exists() and MODEL_PATH.read_text(encoding="utf-8") == text
        print(f"\n{MODEL_PATH.name} {'matches' if same else 'DIFFERS from'} this run")
        sys.exit(0 if same else 1)
    MODEL_PATH.write_text(text, encoding="utf-8")
    print(f"\nwrote {MODEL_PATH.relative_to(ROOT)} ({len(text) // 1024} KB)")


if __name__ == "__main__":
    main()
