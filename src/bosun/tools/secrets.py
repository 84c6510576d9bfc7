"""Credentials for tools: where they come from (`SecretsProvider`) and how they travel (`Secret`).

A tool declares the *name* of the credential it needs (``@tool(credential="CRM_TOKEN")``) and a
parameter annotated `Secret`. The pipeline asks the executor's provider for the value at call
time and hands it to the tool wrapped in a `Secret`, so the value never appears in a schema, a
prompt, a log line written through ``repr`` or a tool result.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from typing import Any, Final, NoReturn, Protocol, final, runtime_checkable

__all__ = ["EnvSecrets", "MappingSecrets", "Secret", "SecretsProvider"]

_MASK: Final = "**********"


@final
class Secret:
    """A credential value that does not show itself: ``repr``/``str`` print a mask.

    Like pydantic's ``SecretStr``, but with no pydantic schema, so a `Secret` can never become
    part of the arguments a model fills in. Call `reveal` at the point of use.
    """

    __slots__ = ("_value",)

    _value: str

    def __init__(self, value: str) -> None:
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """The secret value itself. Use it, do not log it."""
        return self._value

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError("Secret is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("Secret is immutable")

    def __repr__(self) -> str:
        return f"Secret('{_MASK}')"

    def __str__(self) -> str:
        return _MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self

    def __reduce__(self) -> NoReturn:
        # Pickling would write the value to wherever the pickle goes (a journal, a cache).
        raise TypeError("Secret cannot be pickled")


@runtime_checkable
class SecretsProvider(Protocol):
    """Looks up credentials by name at call time."""

    def get(self, name: str) -> str | None:
        """The value of credential `name`, or `None` when it is not configured."""
        ...


class EnvSecrets:
    """Credentials from environment variables, read when a tool is called (so rotation works)."""

    def __init__(self, *, prefix: str = "") -> None:
        self.prefix = prefix
        """Prepended to every name: ``EnvSecrets(prefix="BOSUN_")`` reads ``BOSUN_CRM_TOKEN``."""

    def get(self, name: str) -> str | None:
        """The variable's value; `None` when it is unset or empty."""
        return os.environ.get(self.prefix + name) or None

    def __repr__(self) -> str:
        return f"EnvSecrets(prefix={self.prefix!r})"


class MappingSecrets:
    """Credentials from a mapping, copied at construction (tests, or a vault loaded at start)."""

    def __init__(self, mapping: Mapping[str, str], /) -> None:
        self._values = dict(mapping)

    def get(self, name: str) -> str | None:
        """The value stored under `name`; `None` when absent or empty."""
        return self._values.get(name) or None

    def __repr__(self) -> str:
        return f"MappingSecrets(names={sorted(self._values)!r})"
