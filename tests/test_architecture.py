"""The floors of the house hold: lint-imports (import-linter) checks the contracts in pyproject.toml, and a
deliberately added upward import breaks them.

calosim installs backends/, kernels/ and cli/ as calosim.backends, calosim.kernels and calosim.cli through
package-dir, which import-linter's graph builder (a walk of the package directory) does not follow; the check
therefore runs on a copy of the sources laid out as installed."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCES = {"calosim": "", "backends": "backends", "kernels": "kernels", "cli": "cli"}

pytest.importorskip("importlinter", reason="import-linter is in the dev extra: pip install -e '.[dev]'")


def _installed_layout(tmp_path) -> pathlib.Path:
    package = tmp_path / "calosim"
    for source, target in SOURCES.items():
        for path in (ROOT / source).rglob("*.py"):
            copy = package / target / path.relative_to(ROOT / source)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, copy)
    shutil.copyfile(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return package


def _lint_imports(tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run([sys.executable, "-c", code, "pyproject.toml", "--no-cache"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_import_contracts_hold(tmp_path):
    _installed_layout(tmp_path)
    result = _lint_imports(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_upward_import_breaks_the_floors(tmp_path):
    package = _installed_layout(tmp_path)
    with open(package / "data" / "formats.py", "a") as f:
        f.write("\nfrom calosim.training import loop  # noqa: E402 - deliberately upward\n")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    assert "calosim.data is not allowed to import calosim.training" in result.stdout
