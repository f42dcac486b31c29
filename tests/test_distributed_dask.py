"""Sharded jobs on Dask (calosim.distributed.shards): `generate --dask local:2` writes the file the one-process
run of the same seed and shard size writes, bit for bit; a lost worker's shards are rerun; an interrupted job
resumes from its kept shards; `simulate --engine geant4 --dask local:2` equals the one-process Geant4 run.

Skipped where dask.distributed is not installed (the distributed extra). Each test starts a 2-worker
LocalCluster (a few seconds) and generates a few dozen showers of a tiny model on the numpy backend.
"""

from __future__ import annotations

import importlib.util
import os
import signal

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from test_train import _tiny_model

from calosim.cli.main import main
from calosim.errors import ConfigError
from calosim.models.files import save_model
from calosim.sampling import generate

HAVE_DASK = importlib.util.find_spec("distributed") is not None
HAVE_GEANT4 = importlib.util.find_spec("geant4_pybind") is not None
pytestmark = pytest.mark.skipif(not HAVE_DASK, reason="dask.distributed is not installed "
                                                      "(pip install 'calosim[distributed]')")
SHOWERS, SHARD, BATCH = 70, 10, 4  # 7 shards, the last one of 10 too; batches of 4 inside a shard


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return save_model(tmp_path_factory.mktemp("model") / "tiny.h5", _tiny_model("numpy"))


@pytest.fixture(scope="module")
def reference(model_file, tmp_path_factory):
    """The one-process run with the same seed and shard size."""
    out = tmp_path_factory.mktemp("reference") / "one.h5"
    generate(model_file, out, num_showers=SHOWERS, backend="numpy", batch_size=BATCH, seed=5, shard_size=SHARD)
    return out


def assert_same_file(a, b, attrs=True):
    """Every dataset bit for bit (and, with ``attrs``, every attribute)."""
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        assert sorted(fa) == sorted(fb)
        for name in fa:
            x, y = fa[name][()], fb[name][()]
            assert x.dtype == y.dtype and x.shape == y.shape, name
            assert x.tobytes() == y.tobytes(), f"dataset {name} differs"
        if attrs:
            differ = [k for k in set(fa.attrs) | set(fb.attrs) if str(fa.attrs.get(k)) != str(fb.attrs.get(k))]
            assert not differ, differ


def test_sharded_streams_differ_from_unsharded_but_not_with_the_batch_size(model_file, reference, tmp_path):
    unsharded = generate(model_file, tmp_path / "u.h5", num_showers=SHOWERS, backend="numpy", batch_size=BATCH,
                         seed=5)
    with h5py.File(reference, "r") as f, h5py.File(unsharded.path, "r") as g:
        assert not np.array_equal(f["layer_0"][()], g["layer_0"][()])  # other streams: said in --help
        assert f.attrs["shard_size"] == SHARD and "shard_size" not in g.attrs


def test_generate_dask_local_2_equals_one_process_and_virtual_reads_the_same(model_file, reference, tmp_path):
    out = tmp_path / "dask.h5"
    args = ["generate", "--model", str(model_file), "--backend", "numpy", "-n", str(SHOWERS), "--batch-size",
            str(BATCH), "--seed", "5", "--shard-size", str(SHARD), "--dask", "local:2"]
    result = CliRunner().invoke(main, [*args, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "7 shards on Dask" in result.output
    assert_same_file(reference, out)
    assert not (tmp_path / "dask.h5.shards").exists()  # combined: the shards are gone

    virtual = tmp_path / "virtual.h5"
    result = CliRunner().invoke(main, [*args, "--virtual", "-o", str(virtual)])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "virtual.h5.shards").glob("shard_*.h5"))) == 7  # kept: they hold the data
    with h5py.File(virtual, "r") as f:
        assert f["layer_0"].is_virtual
    cwd = os.getcwd()
    try:  # the shards are found relative to the virtual file, from any working directory
        os.chdir("/")
        assert_same_file(reference, virtual, attrs=False)
    finally:
        os.chdir(cwd)


def test_a_killed_worker_s_shards_are_rerun(model_file, reference, tmp_path):
    import logging

    import distributed

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0",
                                  silence_logs=logging.CRITICAL) as cluster:
        with distributed.Client(cluster) as client:  # closed before generate opens its own: one client at a time
            pids = list(client.run(os.getpid).values())
        killed = []

        def kill_one_worker_after_the_first_shard(n_done):
            if not killed:
                os.kill(pids[0], signal.SIGKILL)  # the nanny starts a new worker; its shards go elsewhere
                killed.append(pids[0])

        out = generate(model_file, tmp_path / "lost.h5", num_showers=SHOWERS, backend="numpy", batch_size=BATCH,
                       seed=5, shard_size=SHARD, dask=cluster.scheduler_address,
                       shard_progress=kill_one_worker_after_the_first_shard)
        assert killed
    assert_same_file(reference, out.path)


def test_an_interrupted_job_resumes_from_its_kept_shards(model_file, reference, tmp_path):
    out = tmp_path / "resumed.h5"
    kw = dict(num_showers=SHOWERS, backend="numpy", batch_size=BATCH, seed=5, shard_size=SHARD, dask="local:2")

    def interrupt_after_two(n_done, seen=[]):  # noqa: B006 - the call count of this one job
        seen.append(n_done)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate(model_file, out, shard_progress=interrupt_after_two, **kw)
    assert not out.exists()
    kept = sorted((tmp_path / "resumed.h5.shards").glob("shard_*.h5"))
    assert len(kept) >= 2
    calls = []
    generate(model_file, out, shard_progress=calls.append, **kw)
    assert calls[0] >= len(kept) and sum(calls) == 7  # the kept shards are counted once, not computed again
    assert_same_file(reference, out)

    with pytest.raises(ConfigError, match="another job"):  # other arguments never mix with kept shards
        (tmp_path / "other.h5.shards").mkdir()
        (tmp_path / "other.h5.shards" / "manifest.json").write_text('{"seed": 1}')
        generate(model_file, tmp_path / "other.h5", **kw)


def error_lines(output: str) -> list[str]:
    """The error the command printed (the progress bar's label may stand before it)."""
    lines = output.strip().splitlines()
    return lines[next(i for i, line in enumerate(lines) if line.startswith("Error")):]


def test_bad_addresses_and_a_missing_extra_are_one_line(model_file, tmp_path, monkeypatch):
    base = ["generate", "--model", str(model_file), "--backend", "numpy", "-n", "10", "-o", str(tmp_path / "x.h5")]
    result = CliRunner().invoke(main, [*base, "--dask", "local:two"])
    assert result.exit_code == 1 and "local:N needs a number of workers" in result.output
    assert len(error_lines(result.output)) == 1
    result = CliRunner().invoke(main, [*base, "--dask", "tcp://127.0.0.1:9"])  # nothing listens on port 9
    assert result.exit_code == 1 and "cannot reach a Dask scheduler" in result.output, result.output
    assert len(error_lines(result.output)) == 1
    result = CliRunner().invoke(main, [*base, "--virtual"])
    assert result.exit_code == 1 and "give --dask too" in result.output

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "distributed" else real_find_spec(name, *a))
    result = CliRunner().invoke(main, [*base, "--dask", "local:2"])
    assert result.exit_code == 1 and "pip install 'calosim[distributed]'" in result.output


@pytest.mark.skipif(not HAVE_GEANT4, reason="geant4_pybind is not installed (pip install 'calosim[geant4]')")
def test_simulate_geant4_dask_local_2_equals_one_process(tmp_path, monkeypatch):
    from calosim.geant4 import simulate_geant4_to_file

    monkeypatch.setenv("CALOSIM_CACHE_DIR", str(tmp_path / "cache"))  # stand-in tables and scorer, built once
    one = tmp_path / "one.h5"
    simulate_geant4_to_file(one, "eplus", 6, (2.0, 6.0), 21, approximate_data=True)
    out = tmp_path / "dask.h5"
    result = CliRunner().invoke(main, ["simulate", "--engine", "geant4", "--approximate-data", "--particle", "eplus",
                                       "-n", "6", "--energy-range", "2", "6", "--seed", "21", "--dask", "local:2",
                                       "--shard-size", "2", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert_same_file(one, out, attrs=False)  # ms_per_shower is a timing; shard_size is new
    with h5py.File(out, "r") as f:
        assert f.attrs["engine"] == "geant4" and f.attrs["shard_size"] == 2
