"""Settings: environment variables (``BOSUN_*``) over ``bosun.toml`` over defaults, read here only.

``BOSUN_HOME`` moves the data directory (default ``~/.bosun``), so tests and demos never touch
a user's files. ``bosun.toml`` is looked up in the working directory, then in ``BOSUN_HOME``.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from bosun.errors import ConfigError

__all__ = ["Settings", "load_settings"]


def _default_home() -> Path:
    return Path(os.environ.get("BOSUN_HOME") or Path.home() / ".bosun")


class Settings(BaseSettings):
    """bosun's configuration. Construct with `load_settings()` to get readable errors."""

    model_config = SettingsConfigDict(env_prefix="BOSUN_", extra="forbid", frozen=True)

    home: Path = Field(default_factory=_default_home)
    """Data directory: the SQLite database and anything else bosun writes."""
    database_url: str | None = None
    """SQLAlchemy URL; default ``sqlite:///<home>/bosun.db``. PostgreSQL: ``postgresql+psycopg://``."""
    model: str | None = None
    """Default model for agents that do not name one, e.g. ``openai:gpt-4.1-mini``."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "WARNING"
    """Level of bosun's structured logs."""

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite in the data directory."""
        return self.database_url or f"sqlite:///{self.home / 'bosun.db'}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Earlier sources win: the working directory's bosun.toml over BOSUN_HOME's.
        tomls = [
            TomlConfigSettingsSource(settings_cls, toml_file=path)
            for path in (Path("bosun.toml"), _default_home() / "bosun.toml")
            if path.is_file()
        ]
        return (init_settings, env_settings, *tomls)


def load_settings(**overrides: Any) -> Settings:
    """Read settings, turning validation failures into a `ConfigError` that names the field."""
    try:
        return Settings(**overrides)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"bosun.toml is not valid TOML: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid bosun settings ({problems})") from exc
