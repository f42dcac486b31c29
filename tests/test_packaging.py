"""Every data file the package reads beside its modules (bundled showers, pretrained models, C++ and CUDA sources)
is declared as package data in pyproject.toml, so a normal (non-editable) install has it too."""

from __future__ import annotations

import fnmatch
import subprocess
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python >= 3.11's tomllib")

ROOT = Path(__file__).resolve().parents[1]


def _tracked_data_files() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "calosim", "backends", "kernels", "cli"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files are unknown")
    return [p for p in out.split() if not p.endswith(".py")]


def test_every_data_file_is_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    package_dirs = config["package-dir"]  # e.g. calosim.kernels -> kernels

    def folder(package: str) -> Path:
        owner = max((p for p in package_dirs if package == p or package.startswith(p + ".")), key=len)
        return Path(package_dirs[owner], *package[len(owner):].split(".")[1:])

    declared = [str(folder(package) / pattern) for package, patterns in config["package-data"].items()
                for pattern in patterns]
    files = _tracked_data_files()
    assert files, "no data files found: the check would pass vacuously"
    missing = [f for f in files if not any(fnmatch.fnmatch(f, pattern) for pattern in declared)]
    assert not missing, f"not in [tool.setuptools.package-data]: {missing}"
