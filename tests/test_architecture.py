"""The package rules of docs/architecture.md: import-linter's contracts (pyproject.toml)
hold, and the producer SDK stays light in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("contract", ["layers", "click-in-cli", "pure-domain", "light-producer"])
def test_the_import_contract_holds(contract: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), limit_to_contracts=(contract,),
                        no_cache=True, no_logo=True) == 0


def test_a_violation_breaks_the_layers_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check can fail: a copy of the package where the store imports the command
    line breaks it."""
    import shutil

    shutil.copytree(ROOT / "journey", tmp_path / "journey", ignore=shutil.ignore_patterns("__pycache__"))
    store = tmp_path / "journey" / "store" / "records.py"
    store.write_text(store.read_text() + "\nfrom journey.cli import main  # noqa\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m == "journey" or m.startswith("journey.")]:
        monkeypatch.delitem(sys.modules, name)
    assert lint_imports(config_filename=str(tmp_path / "pyproject.toml"), limit_to_contracts=("layers",),
                        no_cache=True, no_logo=True) == 1


def test_the_producer_sdk_loads_no_engine() -> None:
    probe = ("import sys, journey.producer; print(sorted(m for m in ('duckdb', 'eventsourcing', 'networkx', "
             "'plotly', 'click', 'tqdm', 'psycopg') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.strip() == "[]"


def test_the_top_level_names_load_on_first_use() -> None:
    probe = ("import sys, journey; assert 'journey.bootstrap' not in sys.modules; "
             "from journey import Settings, parse_touch, ProjectionError, open_ingestor; "
             "print(Settings.__module__, parse_touch.__module__, ProjectionError.__module__, open_ingestor.__module__)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.split() == ["journey.config", "journey.domain.touch", "journey.errors", "journey.bootstrap"]
