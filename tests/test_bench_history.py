"""Saved benchmark runs, the normalised figure and the regression gate of `calosim bench --history`.

No test here times anything: the pipeline test runs a tiny benchmark through pytest-benchmark with its
--benchmark-timer set to a fake clock that only the benchmarked "kernel" and its "GEMM reference" advance, so
every saved figure is known exactly, load on the machine included.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from calosim.bench_history import DEFAULT_BASELINES, Figure, Run, gate, gate_passes, load_runs, of_newest_kind
from calosim.bench_reference import machine_kind, normalised
from calosim.cli.main import main

REPO = Path(__file__).resolve().parents[1]

FAKE_CLOCK = '''
NOW = [0.0]


def now():
    NOW[0] += 1e-9  # every reading moves on, so pytest-benchmark never sees a stopped clock
    return NOW[0]


def spend(seconds):
    NOW[0] += seconds
'''

TINY_BENCHMARK = '''
import os

import fakeclock

from calosim.bench_reference import normalised


def test_kernel(benchmark):
    load = float(os.environ["TINY_LOAD"])  # another job on the machine slows everything alike
    kernel = load * float(os.environ["TINY_KERNEL_SECONDS"])
    benchmark.pedantic(lambda: fakeclock.spend(kernel), rounds=3, iterations=1)
    start = fakeclock.now()
    fakeclock.spend(load * 1e-3)  # the GEMM reference of the same run
    gemm = fakeclock.now() - start
    benchmark.extra_info.update(ms_per_shower=1e3 * benchmark.stats.stats.min,
                                **normalised(benchmark.stats.stats.min, gemm))
'''


def _run_tiny_benchmark(tmp_path, monkeypatch, storage, kernel_seconds, load):
    monkeypatch.setenv("TINY_KERNEL_SECONDS", str(kernel_seconds))
    monkeypatch.setenv("TINY_LOAD", str(load))
    code = pytest.main(["-q", "-p", "no:cacheprovider", "-c", str(tmp_path / "pytest.ini"), "--benchmark-only",
                        "--benchmark-autosave", f"--benchmark-storage={storage}", "--benchmark-timer=fakeclock.now",
                        str(tmp_path / "test_tiny.py")])
    assert code == 0


def _gate(storage, pct):
    return CliRunner().invoke(main, ["bench", "--history", str(storage), "--baselines", str(storage / "none"),
                                     "--fail-if-slower", str(pct)])


def test_gate_passes_unchanged_runs_under_load_and_fails_a_slower_kernel(tmp_path, monkeypatch):
    (tmp_path / "fakeclock.py").write_text(FAKE_CLOCK)
    (tmp_path / "test_tiny.py").write_text(TINY_BENCHMARK)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    storage = tmp_path / "runs"
    for load in (0.9, 1.0, 1.4):  # the same code on a machine whose load drifts by 55%
        _run_tiny_benchmark(tmp_path, monkeypatch, storage, 5e-3, load)
    runs = load_runs(storage)
    assert [r.figures["test_kernel"].ms for r in runs] == pytest.approx([4.5, 5.0, 7.0], rel=1e-5)
    assert [r.figures["test_kernel"].normalised for r in runs] == pytest.approx([5.0] * 3, rel=1e-5)

    unchanged = _gate(storage, 10)  # a 10% gate on ms would fail the newest run (+56%); on the normalised one:
    assert unchanged.exit_code == 0, unchanged.output
    assert "gate: passed" in unchanged.output and (storage / "history.png").read_bytes()[:4] == b"\x89PNG"

    _run_tiny_benchmark(tmp_path, monkeypatch, storage, 6e-3, 1.0)  # a 20% slower kernel
    slowed = _gate(storage, 10)
    assert slowed.exit_code == 1, slowed.output
    assert "SLOWER" in slowed.output and "+20.0%" in slowed.output


def _runs(*values, kind="amd-epyc-2cpu"):
    return [Run(f"run{i}", f"2025-01-01T00:00:{i:02d}", "abc1234", kind,
                {"test_generation[numba-small-1]": Figure(1.0, v)}) for i, v in enumerate(values)]


def test_gate_compares_with_the_best_of_the_last_window_runs_only():
    runs = _runs(1.0, 2.0, 2.0, 2.0, 2.1)  # the fast first run falls out of a window of 3
    assert gate_passes(gate(runs, 10, window=3))
    (row,) = gate(runs, 10, window=4)
    assert row.best == 1.0 and row.slower and row.change_pct == pytest.approx(110.0)


def test_gate_with_nothing_to_compare_does_not_pass_but_a_new_benchmark_does_not_fail():
    assert not gate_passes(gate(_runs(1.0), 10))
    runs = _runs(1.0, 1.05)
    runs[-1].figures["test_training_iteration[numba-small]"] = Figure(400.0, 3.0)
    rows = gate(runs, 10)
    assert gate_passes(rows) and [r.best for r in rows] == [1.0, None]


def test_runs_of_other_machine_kinds_are_left_out():
    runs = _runs(1.0, kind="big-box-64cpu") + _runs(3.0, 3.1)
    assert [r.machine_kind for r in of_newest_kind(sorted(runs, key=lambda r: r.when))] == ["amd-epyc-2cpu"] * 2


def test_machine_kind_is_a_file_name_safe_label():
    assert machine_kind("Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz", 8) == "intel-xeon-e5-2680-v4-8cpu"
    assert machine_kind("AMD EPYC", 2) == "amd-epyc-2cpu"


def test_normalised_refuses_times_that_are_not_positive():
    assert normalised(3.0, 1.5) == {"gemm_seconds": 1.5, "normalised": 2.0}
    with pytest.raises(ValueError, match="must be positive"):
        normalised(1.0, 0.0)


def test_committed_baselines_load_with_a_machine_kind_and_normalised_figures():
    runs = load_runs(REPO / DEFAULT_BASELINES)
    assert runs, f"no baseline run in {DEFAULT_BASELINES}"
    for run in runs:
        assert run.machine_kind != "unknown" and run.figures, run.source
        assert all(f.normalised and f.normalised > 0 for f in run.figures.values()), run.source


def test_interleaved_reference_pairs_each_round_with_the_pass_just_before_it():
    import numpy as np

    from calosim.backends import get_backend
    from calosim.bench_reference import InterleavedGemm

    reference = InterleavedGemm(get_backend("numpy"), [(1, 2, 3, 4), (2, 2, 3, 4), (1, 2, 3, 4)],
                                np.random.default_rng(0))
    reference()
    assert len(reference.times) == 1 and [t for *_, t in reference.products] == [2, 1]
    reference.times = [9.0, 2.0, 2.0, 1.0]  # a warm-up pass, then one before each of three rounds
    figures = reference.figures([4.0, 4.0, 3.0])  # the first two rounds ran under twice the load of the third
    assert figures["normalised"] == 2.0  # the median of 4/2, 4/2, 3/1
    assert figures["normalised_of_minima"] == 3.0 and figures["gemm_seconds"] == 1.0
