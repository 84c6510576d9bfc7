"""Reading a dataset file (YAML or JSONL) and validating it: every problem reported at once,
named by case id and field."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bosun.errors import UserError
from bosun.evals.dataset.schema import Case, Dataset, Fixtures

__all__ = ["DatasetError", "load_dataset", "parse_dataset"]


class DatasetError(UserError):
    """A dataset that cannot be used: the message names the file, the case and the field."""


class _Header(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    description: str | None = None
    fixtures: Fixtures = {}
    variables: dict[str, Any] = {}
    cases: list[Any] = Field(min_length=1)


def load_dataset(path: str | Path) -> Dataset:
    """Read and validate a dataset (``.yaml``/``.yml`` or ``.jsonl``); `DatasetError` lists
    every problem by case id and field."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read dataset {file}: {exc}") from exc
    raw = _parse(file, data)
    return parse_dataset(raw, name=file.stem, path=str(file), digest=_sha256(data))


def parse_dataset(
    raw: Any, *, name: str, path: str | None = None, digest: str | None = None
) -> Dataset:
    """Validate a dataset already parsed into Python values (`load_dataset` reads files)."""
    where = path or name
    if isinstance(raw, list):
        raw = {"cases": raw}
    if not isinstance(raw, Mapping):
        raise DatasetError(f"dataset {where}: expected a mapping with `cases` or a list of cases")
    try:
        header = _Header.model_validate(raw)
    except ValidationError as exc:
        raise DatasetError(f"dataset {where} is invalid:\n{_lines(exc)}") from exc
    problems: list[str] = []
    cases: list[Case] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(header.cases):
        label = _case_label(item, index)
        try:
            case = Case.model_validate(item)
        except ValidationError as exc:
            problems.append(f"case {label}:\n{_lines(exc, indent='  ')}")
            continue
        if case.id in seen:
            problems.append(f"case {label}: id repeats case #{seen[case.id] + 1}")
        seen[case.id] = index
        cases.append(case)
    if problems:
        raise DatasetError(f"dataset {where} is invalid:\n" + "\n".join(problems))
    text = json.dumps(raw, sort_keys=True, default=str).encode()
    return Dataset(
        name=header.name or name,
        cases=tuple(cases),
        fixtures=header.fixtures,
        variables=header.variables,
        path=path,
        digest=digest or _sha256(text),
    )


def _parse(file: Path, data: bytes) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"dataset {file} is not UTF-8 text") from exc
    if file.suffix == ".jsonl":
        cases = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                cases.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DatasetError(f"dataset {file}, line {number}: not JSON ({exc.msg})") from exc
        return cases
    if file.suffix in (".yaml", ".yml"):
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise DatasetError(f"dataset {file} is not valid YAML: {exc}") from exc
    raise DatasetError(f"dataset {file}: use a .yaml, .yml or .jsonl file")


def _case_label(item: Any, index: int) -> str:
    case_id = item.get("id") if isinstance(item, Mapping) else None
    return f"{case_id!r}" if isinstance(case_id, str) and case_id else f"#{index + 1} (no id)"


def _lines(exc: ValidationError, *, indent: str = "") -> str:
    lines = []
    for error in exc.errors(include_url=False):
        loc = list(error["loc"])
        if len(loc) > 2 and loc[0] == "expect":
            # Pydantic puts the discriminator's tag in the location (expect.0.must_call.args):
            # the key the user wrote already says which assertion it is.
            del loc[2]
        where = ".".join(str(p) for p in loc) or "(case)"
        lines.append(f"{indent}- {where}: {error['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
