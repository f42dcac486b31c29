"""Faults around a run: SIGTERM in generate and train, a full disk, stale temporaries of a killed writer, two runs
into one directory, and a resume that is not the same run (issue 17). Nothing here measures time: the signal
tests wait for a file to appear, then signal."""

from __future__ import annotations

import errno
import os
import resource
import signal
import subprocess
import time

import h5py
import pytest
from hostile_helpers import CALOSIM, assert_one_line, leftovers, run_cli, showers_file, small_model

from calosim.atomic import sweep_stale_temporaries
from calosim.training.rundir import run_lock


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return small_model(tmp_path_factory.mktemp("model") / "model.h5")


@pytest.fixture(scope="module")
def one_epoch_run(tmp_path_factory):
    """A run directory after one epoch (calogan small, 256 training showers), and its data file."""
    work = tmp_path_factory.mktemp("run")
    data = showers_file(work / "d.h5", 320)
    code, out = run_cli("train", "--data", data, "--out", work / "run", "--epochs", "1", "--batch-size", "128",
                        "--backend", "numpy")
    assert code == 0, out
    return work / "run", data


def _wait_for(predicate, proc, what: str, limit_s: float = 300.0):
    """Poll until ``predicate()``; a generous limit only guards against a hang, it measures nothing."""
    deadline = time.monotonic() + limit_s
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"the process ended (rc {proc.returncode}) before {what}: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"no {what} after {limit_s} s")
        time.sleep(0.05)


def _temporaries(directory):
    return lambda: bool(leftovers(directory))


def test_sigterm_in_generate_keeps_the_previous_output(model, tmp_path):
    out = tmp_path / "g.h5"
    out.write_bytes(b"the previous output")
    proc = subprocess.Popen([*CALOSIM, "generate", "--model", str(model), "-n", "200000", "--batch-size", "500",
                             "--backend", "numpy", "-o", str(out), "--force"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(_temporaries(tmp_path), proc, "a temporary file")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "SIGTERM" in err
    assert out.read_bytes() == b"the previous output"
    assert leftovers(tmp_path) == []


def test_sigterm_in_train_leaves_a_resumable_run(tmp_path):
    data = showers_file(tmp_path / "d.h5", 320)
    run = tmp_path / "run"
    proc = subprocess.Popen([*CALOSIM, "train", "--data", str(data), "--out", str(run), "--epochs", "50",
                             "--batch-size", "128", "--backend", "numpy"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: (run / "checkpoint.h5").exists(), proc, "a checkpoint")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    assert leftovers(run) == []
    with h5py.File(run / "checkpoint.h5", "r") as f:  # whole, whatever the moment of the signal
        assert "optimizer" in f


def test_stale_temporaries_of_a_killed_writer_are_swept(model, tmp_path):
    dead = _dead_pid()
    stale = tmp_path / f".g.h5.pid{dead}.0badc0de.tmp"
    stale.write_bytes(b"x" * 1000)
    alive = tmp_path / f".other.h5.pid{os.getppid()}.12345678.tmp"  # a live process's: left alone
    alive.write_bytes(b"y")
    code, out = run_cli("generate", "--model", model, "-n", "20", "--backend", "numpy", "-o", tmp_path / "g.h5")
    assert code == 0, out
    assert not stale.exists() and alive.exists()
    assert sweep_stale_temporaries(tmp_path) == []


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_disk_full_is_one_line_and_leaves_nothing(model, tmp_path, monkeypatch):
    def full(self, key, value):
        raise OSError(errno.ENOSPC, "injected: No space left on device")

    monkeypatch.setattr(h5py.Dataset, "__setitem__", full)
    code, out = run_cli("generate", "--model", model, "-n", "50", "--backend", "numpy", "-o", tmp_path / "g.h5")
    assert_one_line(code, out, 1, "No space left on device")
    assert os.listdir(tmp_path) == []


def test_a_real_write_failure_does_not_crash_at_exit(model, tmp_path):
    """HDF5 fails for real (a file-size limit stands in for a full disk): exit 1, not the segfault of a file
    HDF5 could not close."""
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    proc = subprocess.run([*CALOSIM, "generate", "--model", str(model), "-n", "5000", "--backend", "numpy",
                           "-o", str(tmp_path / "g.h5")], capture_output=True, text=True, preexec_fn=limit)
    assert_one_line(proc.returncode, proc.stderr, 1, "cannot write", "File too large")
    assert os.listdir(tmp_path) == []


def test_a_second_run_into_a_locked_directory_fails_at_once(tmp_path):
    data = showers_file(tmp_path / "d.h5", 320)
    run = tmp_path / "run"
    run.mkdir()
    with run_lock(run):
        code, out = run_cli("train", "--data", data, "--out", run, "--epochs", "1", "--backend", "numpy")
    assert_one_line(code, out, 1, "in use by another calosim train", f"pid {os.getpid()}")
    assert sorted(os.listdir(run)) == [".lock"]


@pytest.mark.parametrize("change,fragment", [
    (["--seed", "7"], "--seed 0 (run) vs 7 (now)"),
    (["--data", "OTHER"], "--data (file contents)"),
    (["--batch-size", "64"], "another config"),
])
def test_resume_refuses_another_run(one_epoch_run, tmp_path, change, fragment):
    run, data = one_epoch_run
    before = {name: (run / name).read_bytes() for name in ("run.json", "log.jsonl", "checkpoint.h5")}
    if "OTHER" in change:
        other = showers_file(tmp_path / "other.h5", 320, {0: 50.0})
        change = ["--data", str(other)]
    args = {"--data": str(data), "--batch-size": "128", "--seed": "0"}
    args.update(dict(zip(change[::2], change[1::2])))
    code, out = run_cli("train", "--out", run, "--epochs", "2", "--resume", "--backend", "numpy",
                        *[x for kv in args.items() for x in kv])
    assert_one_line(code, out, 1, fragment)
    assert {name: (run / name).read_bytes() for name in before} == before


def test_resume_with_the_same_options_continues(one_epoch_run, tmp_path):
    run, data = one_epoch_run
    copy = tmp_path / "run"
    copy.mkdir()
    for name in ("run.json", "log.jsonl", "checkpoint.h5", "last.h5", "best.h5"):
        (copy / name).write_bytes((run / name).read_bytes())
    run_json = (copy / "run.json").read_bytes()
    code, out = run_cli("train", "--data", data, "--out", copy, "--epochs", "2", "--batch-size", "128", "--resume",
                        "--backend", "numpy")
    assert code == 0, out
    assert (copy / "run.json").read_bytes() == run_json  # written once, when the run started
