"""The labelled texts bosun's injection screen is fitted and measured on.

Third-party sources (``BOSUN_DATA_DIR``/injection, read through ``third_party.py``):

- deepset prompt-injections (train split); near-duplicates (the set stacks the same override
  onto many benign prompts) are joined into one group by shared word 6-grams.
- BIPIA emails: clean (negative) and with one attack text planted at a random sentence
  boundary (positive).
- spikee: every same-language jailbreak wrapper x instruction, alone and planted in a seed
  document.
- banking77 customer messages (20 per intent): benign user input.

Sets written for bosun (``bench/data/injection/``, whose README says how they were made):

- ``overdefence``: benign texts full of the words attacks use ("ignore the typo above").
- ``task-style``: polite instructions to an assistant planted in e-mails, with no "ignore
  your instructions" wording, and the e-mails alone.
- ``ml-<lang>``: a parallel phrase table of attacks and benign texts in English, French,
  Spanish, German, Italian, Portuguese, Hindi, Chinese and Japanese, alone and planted in the
  task-style e-mails.
- ``encoded``: held-out attacks and benign texts of the sets above, encoded (base64, hex,
  nested base64, reversed, leetspeak, homoglyphs, zero-width characters, spaced letters).
  Measurement only: nothing is fitted on it.

Every source marks a *held-out* part (texts, attack families or phrase-table items the shipped
model is not fitted on; `Doc.held_out`, `Unit.held_out`). `scripts/train_injection.py` fits the
shipped model on the rest and also measures every source left out of training entirely.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import random
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
OWN = ROOT / "bench" / "data" / "injection"
"""The sets written for bosun."""

SEED = 1729
HELD_OUT = 0.3
LANGUAGES = ("en", "fr", "es", "de", "it", "pt", "hi", "zh", "ja")


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
    held_out: bool = False


def family(source: str) -> str:
    """The source a text counts under when sources are weighted or left out: the phrase
    table's languages are one family for weighting."""
    return "multilingual" if source.startswith("ml-") else source


def hash_fraction(key: str) -> float:
    digest = hashlib.sha256(f"{SEED}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _pick(items: Sequence[str], count: int, salt: str) -> set[str]:
    ordered = sorted(items)
    random.Random(f"{SEED}:{salt}").shuffle(ordered)
    return set(ordered[:count])


def plant(context: str, attack: str, rng: random.Random) -> str:
    """`attack` inserted into `context` at a random sentence or line boundary."""
    spots = [0, len(context)] + [m.end() for m in re.finditer(r"[.!?]\s+|\n", context)]
    at = rng.choice(sorted(set(spots)))
    return f"{context[:at]} {attack} {context[at:]}".strip()


def _jsonl(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


Part = tuple[list[Doc], list[Unit]]


def _deepset(data: Path) -> Part:
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
        held = hash_fraction(group) < HELD_OUT
        docs.append(Doc(row["text"], int(row["label"]), "deepset", (group,), held))
        units.append(Unit(row["text"], int(row["label"]), "deepset", (group,), held_out=held))
    return docs, units


def _banking(data: Path) -> Part:
    by_intent: dict[str, list[str]] = defaultdict(list)
    with (data.parent / "intents" / "banking77-train.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            by_intent[row["category"]].append(row["text"])
    docs, units = [], []
    for intent in sorted(by_intent):
        group = f"banking77:{intent}"
        held = hash_fraction(group) < HELD_OUT
        for text in random.Random(f"{SEED}:{intent}").sample(by_intent[intent], 20):
            docs.append(Doc(text, 0, "banking77", (group,), held))
            units.append(Unit(text, 0, "banking77", (group,), held_out=held))
    return docs, units


def _bipia(data: Path) -> Part:
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
        units.append(Unit(email, 0, "bipia-email", (egroup,), windowed=True, held_out=eheld))
        for cat in sorted(attacks):
            if (cat in held_cats) != eheld:
                continue
            for j, attack in enumerate(attacks[cat]):
                rng = random.Random(f"{SEED}:{i}:{cat}:{j}")
                text = plant(email, attack, rng)
                docs.append(Doc(text, 1, "bipia-email", (egroup, f"bipia:{cat}"), eheld))
    for cat in sorted(attacks):
        held = cat in held_cats
        units.extend(
            Unit(a, 1, "bipia-email", (f"bipia:{cat}",), held_out=held) for a in attacks[cat]
        )
    return docs, units


def _spikee(data: Path) -> Part:
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
            docs.append(Doc(plant(document, text, rng), 1, "spikee", groups, held))
    # Wrappers and instructions are fitted apart, each once: the hundreds of compositions
    # would repeat the same ten instructions and teach their words, not their shape.
    for jb in jailbreaks.values():
        wrapper = jb["text"].replace("<INSTRUCTION>", " ")
        units.append(
            Unit(
                wrapper,
                1,
                "spikee",
                (f"spikee-jb:{jb['jailbreak_type']}",),
                held_out=jb["jailbreak_type"] in held_jb,
            )
        )
    units.extend(
        Unit(
            r["instruction"],
            1,
            "spikee",
            (f"spikee-ins:{r['instruction_type']}",),
            held_out=r["instruction_type"] in held_ins,
        )
        for r in instructions.values()
    )
    return docs, units


def _own(name: str) -> Any:
    return yaml.safe_load((OWN / name).read_text(encoding="utf-8"))


def _overdefence(_: Path) -> Part:
    docs, units = [], []
    for category, texts in _own("overdefence.yaml").items():
        for i, text in enumerate(texts):
            group = f"overdefence:{category}:{i}"
            held = hash_fraction(group) < 0.5
            docs.append(Doc(text, 0, "overdefence", (group,), held))
            units.append(Unit(text, 0, "overdefence", (group,), held_out=held))
    return docs, units


def _task_emails() -> list[str]:
    emails: list[str] = _own("task_style.yaml")["emails"]
    return emails


def _task_style(_: Path) -> Part:
    table = _own("task_style.yaml")
    emails, forms = _task_emails(), table["forms"]
    held_emails = _pick([str(i) for i in range(len(emails))], 3, "task-emails")
    docs, units = [], []
    for i, email in enumerate(emails):
        group, held = f"task-email:{i}", str(i) in held_emails
        docs.append(Doc(email, 0, "task-style", (group,), held))
        units.append(Unit(email, 0, "task-style", (group,), windowed=True, held_out=held))
    for j, attack in enumerate(table["attacks"]):
        group = f"task-attack:{j}"
        held = hash_fraction(group) < HELD_OUT
        rng = random.Random(f"{SEED}:task:{j}")
        pool = [i for i in range(len(emails)) if (str(i) in held_emails) == held]
        i = rng.choice(pool)
        form = rng.choice(forms).format(attack=attack)
        groups = (group, f"task-email:{i}")
        docs.append(Doc(attack, 1, "task-style", groups[:1], held))
        docs.append(Doc(plant(emails[i], form, rng), 1, "task-style", groups, held))
        units.append(Unit(attack, 1, "task-style", groups[:1], held_out=held))
    return docs, units


def _multilingual(_: Path) -> Part:
    table = _own("multilingual.yaml")
    emails = _task_emails()
    docs, units = [], []
    for kind, label in (("attacks", 1), ("benign", 0)):
        for item, translations in table[kind].items():
            held = hash_fraction(f"ml:{item}") < HELD_OUT
            for lang in LANGUAGES:
                text = translations[lang]
                source = f"ml-{lang}"
                groups = (f"ml:{item}", f"ml-lang:{lang}")
                rng = random.Random(f"{SEED}:ml:{item}:{lang}")
                docs.append(Doc(text, label, source, groups, held))
                docs.append(Doc(plant(rng.choice(emails), text, rng), label, source, groups, held))
                units.append(Unit(text, label, source, groups, held_out=held))
    return docs, units


ENCODINGS: dict[str, Callable[[str], str]] = {
    "base64": lambda t: base64.b64encode(t.encode()).decode(),
    "hex": lambda t: t.encode().hex(),
    "base64 of base64": lambda t: base64.b64encode(base64.b64encode(t.encode())).decode(),
    "reversed": lambda t: t[::-1],
    "leetspeak": lambda t: t.translate(str.maketrans("aeiostAEIOST", "4310574310$7")),
    "homoglyphs": lambda t: t.translate(str.maketrans("aeopcxiAEOPCX", "аеорсхіАЕОРСХ")),
    "zero-width": lambda t: "\u200b".join(t),
    "spaced letters": lambda t: " ".join(t.replace(" ", "  ")),
}
"""How the `encoded` set hides a text (each as an attacker would write it)."""


def encoded(docs: Sequence[Doc]) -> list[Doc]:
    """Held-out standalone texts of the sets written for bosun and of deepset, each encoded
    every way in `ENCODINGS`, behind a short benign lead-in."""
    base = [
        d
        for d in docs
        if d.held_out
        and d.source in ("deepset", "overdefence", "task-style", "ml-en")
        and len(d.groups) == 1
        and len(d.text) < 400
    ]
    out = []
    for d in base:
        for name, encode in ENCODINGS.items():
            text = f"Hi, please see the note below.\n{encode(d.text)}\nThanks."
            out.append(Doc(text, d.label, "encoded", (*d.groups, f"enc:{name}"), True))
    return out


THIRD_PARTY: tuple[Callable[[Path], Part], ...] = (_deepset, _bipia, _spikee, _banking)
OWN_SETS: tuple[Callable[[Path], Part], ...] = (_overdefence, _task_style, _multilingual)
