"""docs/operations.md's configuration reference is the code's: generated from
``consumers/settings.py`` by ``scripts/settings_table.py``, and checked here so it cannot rot."""

from __future__ import annotations

import functools
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

from consumers.settings import _env_specs

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "operations.md"


@functools.cache
def settings_table() -> ModuleType:
    """scripts/settings_table.py as a module (scripts/ is not a package), loaded once."""
    spec = importlib.util.spec_from_file_location(
        "settings_table", ROOT / "scripts" / "settings_table.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["settings_table"] = module  # doctest finds examples through sys.modules
    spec.loader.exec_module(module)
    return module


def test_the_configuration_reference_in_the_doc_is_what_the_code_generates():
    table = settings_table()
    assert table.current_block(DOC.read_text()) == table.markdown(), (
        "docs/operations.md is stale: run python scripts/settings_table.py --write"
    )


def test_the_reference_names_every_environment_variable_of_the_loader_once():
    names = re.findall(r"^\| `\w+` \| `(STREAMVAE_\w+)` \|", DOC.read_text(), re.MULTILINE)
    assert len(names) == len(set(names))
    assert set(names) == set(_env_specs())


def test_the_reference_shows_defaults_as_the_records_define_them():
    rows = {r.env: r for r in settings_table().rows()}
    assert rows["STREAMVAE_RUN_METRICS_PORT"].default == "`9108`"
    assert rows["STREAMVAE_KAFKA_BOOTSTRAP_SERVERS"].default == "**required**"
    assert rows["STREAMVAE_KAFKA_GROUP_ID"].default == '`"streamvae"`'
    assert rows["STREAMVAE_RUN_MODEL"].default == "unset"
    assert "never in the file" in rows["STREAMVAE_KAFKA_SECURITY_PASSWORD"].values


def test_a_stale_reference_is_reported(tmp_path):
    table = settings_table()
    stale = table.replace_block(DOC.read_text(), "| `old` | `STREAMVAE_OLD` | 1 | x |\n")
    assert table.current_block(stale) != table.markdown()


def test_the_scripts_docstring_examples_run():
    import doctest

    result = doctest.testmod(settings_table(), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


def test_every_alert_rule_the_doc_promises_is_shipped_and_every_shipped_rule_is_documented():
    import yaml

    shipped = {
        rule["alert"]
        for group in yaml.safe_load((ROOT / "deploy" / "prometheus" / "rules.yml").read_text())[
            "groups"
        ]
        for rule in group["rules"]
    }
    documented = set(re.findall(r"rule `(Streamvae\w+)`", DOC.read_text()))
    assert documented == shipped
