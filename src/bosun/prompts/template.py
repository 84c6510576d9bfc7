"""Prompt versions as values: a sandboxed Jinja2 template with typed variables, model
settings and a digest; validation, rendering, and prompt files in a user's repository.

Prompt editors are not code authors: templates render in Jinja2's
`ImmutableSandboxedEnvironment` with `StrictUndefined`, so a template can neither reach Python
internals nor mutate the values it is given, and a missing variable is an error rather than
an empty string. Every variable a template uses must be declared with a type (checked when
the version is built), and values are checked against those types before rendering.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, get_args

import semver
import yaml
from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, meta
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, ConfigDict, ValidationError

from bosun.errors import UserError
from bosun.models.base import ModelSettings

__all__ = [
    "PromptError",
    "PromptNotFound",
    "PromptVersion",
    "PromotionRefused",
    "VarType",
    "build_version",
    "diffable",
    "load_prompt_files",
    "read_prompt_file",
]

VarType = Literal["str", "int", "float", "bool", "list", "dict"]
"""The types a template variable may declare."""

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (float, int),
    "bool": (bool,),
    "list": (list, tuple),
    "dict": (dict,),
}
_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


# --- errors ---------------------------------------------------------------------------------


class PromptError(UserError):
    """A prompt, a label move or a render is invalid; the message says what to change."""


class PromptNotFound(PromptError):
    """No such prompt, version or label."""


class PromotionRefused(PromptError):
    """A move to ``production`` without a passing evaluation gate."""


# --- versions -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PromptVersion:
    """One immutable version of a prompt."""

    name: str
    """The prompt's name."""
    version: str
    """Semantic version (``1.4.0``, ``2.0.0-rc.1``)."""
    template: str
    """Jinja2 template text (rendered sandboxed, undefined variables are errors)."""
    variables: Mapping[str, VarType]
    """Declared variables and their types."""
    model_settings: Mapping[str, Any]
    """Sampling settings (`bosun.models.ModelSettings` fields) sent with this prompt."""
    changelog: str | None
    """What changed and why."""
    owner: str | None
    """Who answers for this version."""
    digest: str
    """sha256 of template, variables and model settings: equal digests behave the same."""
    created_at: float
    """Unix seconds."""

    def render(self, variables: Mapping[str, Any] | None = None) -> str:
        """The template rendered with `variables`, checked against their declared types."""
        values = dict(variables or {})
        _check_values(self, values)
        try:
            return _compiled(self.template).render(values)
        except SecurityError as exc:
            raise PromptError(f"prompt {self.label_text}: the template is unsafe: {exc}") from exc
        except TemplateError as exc:
            raise PromptError(f"prompt {self.label_text} failed to render: {exc}") from exc

    def settings(self) -> ModelSettings:
        """`model_settings` as a `ModelSettings`."""
        return ModelSettings.model_validate(dict(self.model_settings))

    @property
    def label_text(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"


class _PromptFile(BaseModel):
    """One prompt version as a YAML document in a user's repository."""

    model_config = ConfigDict(extra="forbid")

    name: str
    version: str
    template: str
    variables: dict[str, VarType] = {}
    model_settings: dict[str, Any] = {}
    changelog: str | None = None
    owner: str | None = None


# --- prompt files ---------------------------------------------------------------------------


def load_prompt_files(path: str | Path) -> list[PromptVersion]:
    """Every prompt version in the ``*.yaml``/``*.yml`` files under `path` (one version per
    YAML document), validated as `PromptRegistry.create` would."""
    root = Path(path)
    if not root.is_dir():
        raise PromptError(f"{root} is not a directory")
    files = sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    found: dict[tuple[str, str], tuple[PromptVersion, Path]] = {}
    for file in files:
        for item in _read_prompt_file(file):
            key = (item.name, item.version)
            if key in found:
                raise PromptError(
                    f"{item.label_text} is defined twice: in {found[key][1]} and in {file}"
                )
            found[key] = (item, file)
    return [item for item, _ in found.values()]


def read_prompt_file(path: str | Path) -> list[PromptVersion]:
    """The prompt versions in one YAML file."""
    return _read_prompt_file(Path(path))


def _read_prompt_file(file: Path) -> list[PromptVersion]:
    try:
        documents = [d for d in yaml.safe_load_all(file.read_text(encoding="utf-8")) if d]
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise PromptError(f"cannot read prompt file {file}: {exc}") from exc
    items = []
    for number, document in enumerate(documents, start=1):
        where = f"{file}" + (f" (document {number})" if len(documents) > 1 else "")
        try:
            spec = _PromptFile.model_validate(document)
        except ValidationError as exc:
            raise PromptError(f"{where} is not a valid prompt file:\n{_errors(exc)}") from exc
        try:
            items.append(
                build_version(
                    spec.name,
                    spec.version,
                    spec.template,
                    variables=spec.variables,
                    model_settings=spec.model_settings,
                    changelog=spec.changelog,
                    owner=spec.owner,
                )
            )
        except PromptError as exc:
            raise PromptError(f"{where}: {exc}") from exc
    return items


# --- helpers --------------------------------------------------------------------------------


def build_version(
    name: str,
    version: str,
    template: str,
    *,
    variables: Mapping[str, str],
    model_settings: Mapping[str, Any],
    changelog: str | None,
    owner: str | None,
) -> PromptVersion:
    if not _NAME.match(name):
        raise PromptError(f"prompt name {name!r} must match {_NAME.pattern}")
    if len(version) > 64 or not semver.Version.is_valid(version):
        raise PromptError(
            f"version {version!r} of {name!r} is not a semantic version (MAJOR.MINOR.PATCH, "
            "e.g. 1.2.0 or 2.0.0-rc.1)"
        )
    if owner is not None and len(owner) > 200:
        raise PromptError("owner must be at most 200 characters")
    declared = _check_variables(name, variables)
    _check_template(name, version, template, declared)
    try:
        settings = ModelSettings.model_validate(dict(model_settings))
    except ValidationError as exc:
        raise PromptError(
            f"model_settings of {name}@{version} are invalid:\n{_errors(exc)}"
        ) from exc
    settings_json = settings.model_dump(mode="json", exclude_none=True)
    return PromptVersion(
        name=name,
        version=version,
        template=template,
        variables=declared,
        model_settings=settings_json,
        changelog=changelog,
        owner=owner,
        digest=_digest(template, declared, settings_json),
        created_at=time.time(),
    )


def _check_variables(name: str, variables: Mapping[str, str]) -> dict[str, VarType]:
    allowed = get_args(VarType)
    declared: dict[str, VarType] = {}
    for var, kind in variables.items():
        if not var.isidentifier():
            raise PromptError(f"prompt {name!r}: variable {var!r} is not a valid identifier")
        if kind not in allowed:
            raise PromptError(
                f"prompt {name!r}: variable {var!r} has type {kind!r}; use one of "
                f"{', '.join(allowed)}"
            )
        declared[var] = kind  # type: ignore[assignment]  # checked against VarType above
    return declared


def _check_template(name: str, version: str, template: str, declared: Mapping[str, str]) -> None:
    try:
        parsed = _ENV.parse(template)
    except TemplateSyntaxError as exc:
        raise PromptError(
            f"the template of {name}@{version} does not parse (line {exc.lineno}): {exc.message}"
        ) from exc
    used = meta.find_undeclared_variables(parsed) - set(_ENV.globals)
    undeclared = sorted(used - set(declared))
    if undeclared:
        raise PromptError(
            f"the template of {name}@{version} uses undeclared variables {undeclared}; "
            "declare them under `variables` with a type"
        )


def _check_values(version: PromptVersion, values: Mapping[str, Any]) -> None:
    unknown = sorted(set(values) - set(version.variables))
    if unknown:
        raise PromptError(f"prompt {version.label_text} does not declare variables {unknown}")
    missing = sorted(set(version.variables) - set(values))
    if missing:
        raise PromptError(f"prompt {version.label_text} needs variables {missing}")
    for var, kind in version.variables.items():
        value = values[var]
        # bool is an int in Python; a flag where a number is expected is a mistake.
        wrong_bool = isinstance(value, bool) and kind in ("int", "float")
        if wrong_bool or not isinstance(value, _PYTHON_TYPES[kind]):
            raise PromptError(
                f"prompt {version.label_text}: variable {var!r} must be {kind}, got "
                f"{type(value).__name__}"
            )


@lru_cache(maxsize=256)
def _compiled(template: str) -> Template:
    return _ENV.from_string(template)


def _digest(template: str, variables: Mapping[str, str], settings: Mapping[str, Any]) -> str:
    content = {"template": template, "variables": dict(variables), "model_settings": settings}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def diffable(version: PromptVersion) -> str:
    """The version as text to diff: template, then variables and model settings."""
    settings = json.dumps(dict(version.model_settings), sort_keys=True, indent=2)
    variables = json.dumps(dict(version.variables), sort_keys=True, indent=2)
    template = version.template if version.template.endswith("\n") else version.template + "\n"
    return f"{template}--- variables ---\n{variables}\n--- model_settings ---\n{settings}\n"


def _errors(exc: ValidationError) -> str:
    return "\n".join(
        f"- {'.'.join(str(p) for p in e['loc']) or '(document)'}: {e['msg']}"
        for e in exc.errors(include_url=False)
    )
