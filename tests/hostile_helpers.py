"""Builders of bad inputs for the hostile-input suite (test_hostile_inputs.py, test_faults.py), and the one check
every case makes: exit code, one line, no traceback, nothing written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
from click.testing import CliRunner

from calosim.backends import get_backend
from calosim.cli.main import main
from calosim.data.bundled import bundled_path
from calosim.data.formats import read_showers, write_showers
from calosim.models.files import save_model
from calosim.models.registry import get_model_type

CALOSIM = [sys.executable, "-c", "from calosim.cli.main import main; main()"]


def small_model(path: Path, config: str = "small") -> Path:
    """An untrained calogan model file, trained range [1, 100] GeV."""
    kind = get_model_type("calogan")
    model = kind.build(kind.get_config(config), kind.default_geometry(), get_backend("numpy"),
                       np.random.default_rng(0), particle="e+", energy_range=(1.0, 100.0))
    return save_model(path, model)


def edit_model(src: Path, dst: Path, edit) -> Path:
    """A copy of a model file changed by ``edit(h5py.File)``."""
    shutil.copy(src, dst)
    with h5py.File(dst, "a") as f:
        edit(f)
    return dst


def edit_config(src: Path, dst: Path, group: str, key: str, value) -> Path:
    def change(f):
        config = json.loads(f.attrs["config"])
        config[group][key] = value
        f.attrs["config"] = json.dumps(config)

    return edit_model(src, dst, change)


def showers_file(path: Path, n: int = 320, energies=None) -> Path:
    """The first ``n`` bundled Geant4 e+ showers, with ``energies`` ({row: GeV}) written over theirs, unchecked."""
    write_showers(path, read_showers(bundled_path("eplus"), 0, n), seed=0)
    if energies:
        with h5py.File(path, "a") as f:
            e = f["energy"][()]
            for row, value in energies.items():
                e[row] = value
            f["energy"][...] = e
    return path


def run_cli(*args: str):
    """(exit code, output) of ``calosim ARGS`` in this process."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def run_process(*args: str, cwd=None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*CALOSIM, *map(str, args)], capture_output=True, text=True, cwd=cwd, **kwargs)


def assert_one_line(code: int, output: str, expected_code: int, *fragments: str) -> None:
    """The error is one line starting with 'Error:' that holds every fragment, and no traceback."""
    lines = [line for line in output.splitlines() if line.startswith("Error:")]
    assert code == expected_code, output
    assert "Traceback" not in output, output
    assert len(lines) == 1, output
    for fragment in fragments:
        assert fragment in lines[0], output


def leftovers(directory: Path) -> list[str]:
    """Hidden temporaries left in a directory."""
    return sorted(name for name in os.listdir(directory) if name.endswith(".tmp"))
