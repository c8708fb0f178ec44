"""The configuration: one typed object, its keys and defaults held to the README's table."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from corsadmin import CorsAdmin
from corsadmin.config import DEFAULT_CONFIG, CorsAdminConfig, describe
from corsadmin.state import state

README = Path(__file__).resolve().parent.parent / "README.md"
ROW = re.compile(r"^\| `(CORSADMIN_[A-Z_]+)` \| `([^`]*)` \|", re.M)


def readme_table() -> dict[str, Any]:
    """The README's configuration table: key -> default (read as a Python literal)."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return {key: ast.literal_eval(default) for key, default in ROW.findall(section)}


def test_every_key_in_the_readme_table_exists_with_the_same_default() -> None:
    table = readme_table()
    assert table, "no configuration table found in README.md"
    for key, default in table.items():
        assert key in DEFAULT_CONFIG, f"README lists {key}, which corsadmin does not read"
        assert DEFAULT_CONFIG[key] == default, (key, DEFAULT_CONFIG[key], default)
        assert type(DEFAULT_CONFIG[key]) is type(default), key


def test_every_key_is_in_the_readme_table() -> None:
    assert set(DEFAULT_CONFIG) == set(readme_table())


def test_every_setting_is_described_once() -> None:
    rows = describe()
    assert [key for key, _, _ in rows] == list(DEFAULT_CONFIG)
    assert all(meaning for _, _, meaning in rows)


def test_init_app_builds_the_object_from_app_config(tmp_path: Path) -> None:
    app = Flask(__name__)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'c.sqlite'}",
        CORSADMIN_REFRESH_IN_BACKGROUND=False,
        CORSADMIN_URL_PREFIX="admin/cors/",
        CORSADMIN_STALE_AFTER_DAYS=7,
    )
    CorsAdmin(app)
    config = state(app).config
    assert isinstance(config, CorsAdminConfig)
    assert (config.url_prefix, config.admin_prefix) == ("admin/cors/", "/admin/cors")
    assert config.stale_after_days == 7
    assert config.refresh_interval == 1.0
    with pytest.raises(AttributeError):
        config.refresh_interval = 2.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("CORSADMIN_REFRESH_INTERVAL", "soon"),
        ("CORSADMIN_REFRESH_INTERVAL", -1),
        ("CORSADMIN_USAGE_FLUSH_INTERVAL", float("nan")),
        ("CORSADMIN_STALE_AFTER_DAYS", "30"),
        ("CORSADMIN_EXPIRING_WITHIN_DAYS", -1),
        ("CORSADMIN_LOGIN_ATTEMPTS", 0),
        ("CORSADMIN_LOGIN_WINDOW", 0),
        ("CORSADMIN_SESSION_IDLE_MINUTES", 0),
        ("CORSADMIN_USAGE_RETENTION_DAYS", 0),
        ("CORSADMIN_OPERATOR_LOADER", 42),
        ("CORSADMIN_LOGIN_URL", 42),
        ("CORSADMIN_URL_PREFIX", None),
    ],
)
def test_a_bad_value_is_refused_at_init_app_naming_the_key(
    tmp_path: Path, key: str, value: Any
) -> None:
    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'c.sqlite'}")
    app.config[key] = value
    with pytest.raises(ValueError, match=key):
        CorsAdmin(app)
