"""Settings: BOSUN_* environment over bosun.toml over defaults, and readable errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bosun.config import Settings, load_settings, normalise_database_url
from bosun.errors import ConfigError


@pytest.fixture(autouse=True)
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory of the test's own, so no bosun.toml around the checkout leaks in."""
    cwd = tmp_path / "project"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def write_toml(directory: Path, text: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "bosun.toml").write_text(text)


def test_defaults_live_under_bosun_home(bosun_home: Path) -> None:
    settings = load_settings()

    assert settings.home == bosun_home
    assert settings.database_url is None
    assert settings.resolved_database_url == f"sqlite:///{bosun_home / 'bosun.db'}"
    assert (settings.model, settings.log_level) == (None, "WARNING")


def test_home_defaults_to_dot_bosun_in_the_users_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BOSUN_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))

    settings = load_settings()

    assert settings.home == tmp_path / "user" / ".bosun"
    assert (
        settings.resolved_database_url == f"sqlite:///{tmp_path / 'user' / '.bosun' / 'bosun.db'}"
    )


def test_environment_overrides_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOSUN_HOME", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("BOSUN_MODEL", "openai:gpt-4.1-mini")
    monkeypatch.setenv("BOSUN_LOG_LEVEL", "DEBUG")

    settings = load_settings()
    assert settings.home == tmp_path / "elsewhere"
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'elsewhere' / 'bosun.db'}"
    assert (settings.model, settings.log_level) == ("openai:gpt-4.1-mini", "DEBUG")

    monkeypatch.setenv("BOSUN_DATABASE_URL", "postgresql+psycopg://db/bosun")
    assert load_settings().resolved_database_url == "postgresql+psycopg://db/bosun"


def test_toml_in_the_working_directory_is_read(workdir: Path) -> None:
    write_toml(workdir, 'model = "anthropic:claude-sonnet-4"\ndatabase_url = "sqlite:///x.db"\n')

    settings = load_settings()

    assert settings.model == "anthropic:claude-sonnet-4"
    assert settings.resolved_database_url == "sqlite:///x.db"


def test_toml_in_bosun_home_is_read(bosun_home: Path) -> None:
    write_toml(bosun_home, 'log_level = "INFO"\n')

    assert load_settings().log_level == "INFO"


def test_both_tomls_are_read(workdir: Path, bosun_home: Path) -> None:
    write_toml(workdir, 'model = "from-cwd"\n')
    write_toml(bosun_home, 'log_level = "INFO"\n')

    settings = load_settings()

    assert (settings.model, settings.log_level) == ("from-cwd", "INFO")


def test_toml_in_the_working_directory_wins_over_toml_in_bosun_home(
    workdir: Path, bosun_home: Path
) -> None:
    write_toml(workdir, 'model = "from-cwd"\n')
    write_toml(bosun_home, 'model = "from-home"\n')

    assert load_settings().model == "from-cwd"


def test_environment_wins_over_both_tomls(
    workdir: Path, bosun_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_toml(workdir, 'model = "from-cwd"\nlog_level = "INFO"\n')
    write_toml(bosun_home, 'model = "from-home"\nlog_level = "INFO"\n')
    monkeypatch.setenv("BOSUN_MODEL", "from-env")

    settings = load_settings()

    assert (settings.model, settings.log_level) == ("from-env", "INFO")


def test_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOSUN_MODEL", "from-env")

    assert load_settings(model="from-code").model == "from-code"


def test_an_invalid_value_in_toml_is_a_config_error_naming_the_field(workdir: Path) -> None:
    write_toml(workdir, 'model = "ok"\nlog_level = 3\n')

    with pytest.raises(ConfigError, match=r"log_level: Input should be 'DEBUG'") as caught:
        load_settings()

    assert "model" not in str(caught.value)


def test_an_invalid_argument_is_a_config_error_naming_the_field() -> None:
    with pytest.raises(ConfigError, match=r"database_url: Input should be a valid string"):
        load_settings(database_url=["sqlite://"])


def test_an_unknown_key_in_toml_is_a_config_error(bosun_home: Path) -> None:
    write_toml(bosun_home, 'modle = "openai:gpt-4.1-mini"\n')

    with pytest.raises(ConfigError, match=r"modle: Extra inputs are not permitted"):
        load_settings()


def test_a_toml_syntax_error_is_a_config_error(workdir: Path) -> None:
    write_toml(workdir, 'model = "unterminated\n')

    with pytest.raises(ConfigError, match="bosun.toml"):
        load_settings()


def test_settings_are_frozen() -> None:
    settings = load_settings()

    with pytest.raises(ValueError, match="frozen"):
        settings.model = "changed"  # type: ignore[misc]
    assert isinstance(settings, Settings)


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("postgresql://u:p@db:5432/bosun", "postgresql+psycopg://u:p@db:5432/bosun"),
        (
            "postgres://u@db/bosun?sslmode=require",
            "postgresql+psycopg://u@db/bosun?sslmode=require",
        ),
        ("PostgreSQL://db/bosun", "postgresql+psycopg://db/bosun"),
        ("postgresql+psycopg://db/bosun", "postgresql+psycopg://db/bosun"),
        ("postgresql+psycopg2://db/bosun", "postgresql+psycopg2://db/bosun"),  # asked for by name
        ("sqlite:///tmp/bosun.db", "sqlite:///tmp/bosun.db"),
    ],
)
def test_postgres_urls_without_a_driver_use_psycopg(url: str, normalised: str) -> None:
    # SQLAlchemy's default PostgreSQL driver is psycopg2, which bosun does not install.
    assert normalise_database_url(url) == normalised


def test_settings_normalise_the_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOSUN_DATABASE_URL", "postgres://bosun@db/bosun")
    assert load_settings().resolved_database_url == "postgresql+psycopg://bosun@db/bosun"
