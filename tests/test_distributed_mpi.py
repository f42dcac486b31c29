"""Data-parallel training on MPI (calosim.distributed.mpi, ``mpiexec -n K calosim train --distributed``).

- A model without BatchNorm or minibatch discrimination (vae small) trained on 2 ranks ends with the weights, Adam
  moments and RNG states of one process with the same global batch: the streams exactly, the arrays within float32
  summation tolerance, |a - b| <= 1e-4 * max|a| per array after 4 steps (measured: ~1e-5).
- A BatchNorm model (a tiny CaloGAN) trains on 2 ranks, resumes on 1 and again on 2 with --sync-batchnorm; rank 1
  writes nothing.
- Synchronised BatchNorm on slices equals one BatchNorm on the batch (tests/mpi_batchnorm_check.py, float64).
- Errors are one line: no launcher, no mpi4py, a global batch that does not split into K slices.

Skipped where mpi4py or mpiexec are missing (the distributed extra brings both). Each mpiexec run is a few
seconds on the numpy backend.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from test_train import TINY_OVERRIDES, tiny_showers

from calosim.cli.main import main
from calosim.data import read_showers, write_showers

BIN = Path(sys.executable).parent
MPIEXEC = shutil.which("mpiexec", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
HAVE_MPI4PY = importlib.util.find_spec("mpi4py") is not None
needs_mpi = pytest.mark.skipif(not (HAVE_MPI4PY and MPIEXEC), reason="mpi4py or mpiexec is not installed "
                                                                     "(pip install 'calosim[distributed]')")
LAUNCHER_VARIABLES = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALRANKID",
                      "SLURM_STEP_ID")


def calosim(*args, ranks: int | None = None, cwd=None) -> subprocess.CompletedProcess:
    """`calosim ARGS` in a subprocess, under ``mpiexec -n ranks`` when given."""
    command = [str(BIN / "calosim"), *map(str, args)]
    if ranks is not None:
        command = [MPIEXEC, "-n", str(ranks), *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=cwd)


@pytest.fixture(scope="module")
def eplus(tmp_path_factory):
    """160 bundled Geant4 e+ showers: 128 to train on (4 global batches of 32), 32 to validate."""
    from calosim.data.bundled import bundled_path

    path = tmp_path_factory.mktemp("data") / "eplus160.h5"
    write_showers(path, read_showers(bundled_path("eplus"), 0, 160), seed=0, producer="test")
    return path


def checkpoint_arrays(run: Path) -> dict:
    arrays = {}
    with h5py.File(run / "checkpoint.h5", "r") as f:
        f.visititems(lambda name, obj: arrays.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
        state = json.loads(f.attrs["trainer_state"])
    return arrays, state


@needs_mpi
def test_two_ranks_train_a_vae_as_one_process(eplus, tmp_path):
    common = ["train", "--model-type", "vae", "--config", "small", "--backend", "numpy", "--data", eplus, "--epochs",
              "1", "--batch-size", "32", "--seed", "3"]
    one = calosim(*common, "--out", tmp_path / "one")
    assert one.returncode == 0, one.stderr
    two = calosim(*common, "--distributed", "--out", tmp_path / "two", ranks=2)
    assert two.returncode == 0, two.stdout + two.stderr
    assert "on 2 MPI ranks" in two.stdout
    (a, state_a), (b, state_b) = checkpoint_arrays(tmp_path / "one"), checkpoint_arrays(tmp_path / "two")
    assert state_a["rng"] == state_b["rng"]  # noise and shuffle streams advanced exactly as in one process
    assert sorted(a) == sorted(b)
    for name in a:
        if a[name].dtype.kind != "f" or not a[name].size:
            assert np.array_equal(a[name], b[name]), name
            continue
        scale = float(np.max(np.abs(a[name]))) or 1.0
        assert np.max(np.abs(a[name] - b[name])) <= 1e-4 * scale, name
    log_a, log_b = (json.loads((tmp_path / run / "log.jsonl").read_text().splitlines()[0]) for run in ("one", "two"))
    assert log_a["steps"] == log_b["steps"] == 4
    for loss in ("loss", "recon", "kl"):  # logged: the mean over the ranks of the ranks' means
        assert log_b[loss] == pytest.approx(log_a[loss], rel=1e-5)


@needs_mpi
def test_a_batchnorm_model_trains_and_resumes_with_any_number_of_ranks(tmp_path):
    data = tmp_path / "tiny.h5"
    write_showers(data, tiny_showers(100, seed=1), seed=1, producer="test")
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_OVERRIDES))
    run = tmp_path / "run"
    common = ["train", "--backend", "numpy", "--data", data, "--config-file", config, "--out", run, "--distributed"]
    first = calosim(*common, "--epochs", "1", ranks=2)  # per-rank BatchNorm statistics (the default)
    assert first.returncode == 0, first.stdout + first.stderr
    assert sorted(p.name for p in run.iterdir()) == [".lock", "best.h5", "checkpoint.h5", "last.h5", "log.jsonl",
                                                     "run.json"]
    second = calosim(*common, "--epochs", "2", "--resume", ranks=1)
    assert second.returncode == 0, second.stdout + second.stderr
    third = calosim(*common, "--epochs", "3", "--resume", "--sync-batchnorm", ranks=2)
    assert third.returncode == 0, third.stdout + third.stderr
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2, 3]
    assert all(np.isfinite(r["d_real"]) and np.isfinite(r["g_bce"]) for r in log)


@needs_mpi
def test_synchronised_batchnorm_equals_one_batch():
    check = Path(__file__).with_name("mpi_batchnorm_check.py")
    result = subprocess.run([MPIEXEC, "-n", "2", sys.executable, str(check)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_mpi
def test_a_global_batch_that_does_not_split_is_one_line(eplus, tmp_path):
    result = calosim("train", "--model-type", "vae", "--backend", "numpy", "--data", eplus, "--batch-size", "33",
                     "--epochs", "1", "--distributed", "--out", tmp_path / "run", ranks=2)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert errors == ["Error: --distributed: the global batch of 33 does not split into 2 equal slices; choose a "
                      "--batch-size that is a multiple of 2"], result.stderr


def test_distributed_outside_a_launcher_or_without_mpi4py_is_one_line(tmp_path, monkeypatch):
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    args = ["train", "--distributed", "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    expected = "mpiexec -n K calosim train --distributed" if HAVE_MPI4PY else "pip install 'calosim[distributed]'"
    assert expected in result.output and len(result.output.strip().splitlines()) == 1, result.output

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mpi4py" else real_find_spec(name, *a))
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and "pip install 'calosim[distributed]'" in result.output
    assert not (tmp_path / "run").exists()
