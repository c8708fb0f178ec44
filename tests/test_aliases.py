"""The module paths of 0.1 still import for one release, warn, and give the same objects."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import pytest

import corsadmin.db.loader
import corsadmin.db.models
import corsadmin.db.schema
import corsadmin.db.store
import corsadmin.engine.explain
import corsadmin.engine.snapshot
import corsadmin.policy.document
import corsadmin.policy.origins
import corsadmin.policy.paths
import corsadmin.policy.spec
import corsadmin.resources
from tests.support.cli import REPO_ROOT as REPO

ALIASES = {
    "corsadmin.store": [corsadmin.db.store, corsadmin.db.loader, corsadmin.policy.document],
    "corsadmin.origins": [corsadmin.policy.origins],
    "corsadmin.paths": [corsadmin.policy.paths],
    "corsadmin.snapshot": [corsadmin.engine.snapshot],
    "corsadmin.explain": [corsadmin.engine.explain],
    "corsadmin.models": [corsadmin.db.models],
    "corsadmin.schema": [corsadmin.db.schema, corsadmin.resources],
}


@pytest.mark.parametrize("old", sorted(ALIASES))
def test_an_old_module_path_imports_warns_and_exposes_the_same_objects(old: str) -> None:
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=rf"{old} is deprecated") as caught:
        module = importlib.import_module(old)
    assert caught[0].filename == __file__  # the warning names the importer, not importlib
    for home in ALIASES[old]:
        public = getattr(home, "__all__", None) or [n for n in vars(home) if n[0] != "_"]
        for name in public:
            assert getattr(module, name) is getattr(home, name), (old, name)


def test_the_old_store_names_are_all_there() -> None:
    sys.modules.pop("corsadmin.store", None)
    with pytest.warns(DeprecationWarning, match="corsadmin.store is deprecated"):
        store = importlib.import_module("corsadmin.store")
    for name in (
        "PolicyStore",
        "ImportReport",
        "KEEP",
        "BUSY_MESSAGE",
        "database_busy",
        "RuleCache",
        "load_snapshot",
        "read_revision",
        "load_specs",
        "InconsistentRead",
        "spec_of",
        "parse_document",
        "DOCUMENT_FORMAT",
    ):
        assert hasattr(store, name), name


def test_the_old_policy_module_names_warn_from_the_package() -> None:
    with pytest.warns(DeprecationWarning, match=r"corsadmin\.policy\.PolicySpec is deprecated"):
        from corsadmin.policy import PolicySpec
    assert PolicySpec is corsadmin.policy.spec.PolicySpec
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from corsadmin.policy import spec  # a submodule is not deprecated
    assert spec is corsadmin.policy.spec


def test_nothing_in_the_package_imports_an_alias() -> None:
    """Importing the whole package (and the standalone app) loads no deprecated module.

    In a fresh interpreter: reloading here would replace the objects other tests hold.
    """
    probe = (
        "import sys, corsadmin, corsadmin.standalone, manage\n"
        f"loaded = set({sorted(ALIASES)!r}) & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", probe],
        cwd=REPO,
        check=True,
    )
