"""Speed over time (`calosim bench --history`): saved benchmark runs as a table and a plot, and a regression gate.

The runs are the JSON files pytest-benchmark saves on every `pytest --benchmark-only` (bench/conftest.py turns
on its autosave), read through pytest-benchmark's own storage code, plus the committed baseline runs in
bench/baselines/. Only runs of the newest run's machine kind are compared: a 2-core box and a workstation
share no speed. The gate reads the normalised figure (calosim.bench_reference), not ms/shower: on a shared
machine absolute times drift by tens of percent between runs minutes apart, the normalised figure far less.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from calosim.errors import ConfigError

DEFAULT_STORAGE = ".benchmarks"  # pytest-benchmark's default --benchmark-storage, git-ignored
DEFAULT_BASELINES = "bench/baselines"  # committed: one saved run per machine kind


@dataclass(frozen=True)
class Figure:
    ms: float  # ms per shower for generation; ms per call otherwise (a training iteration)
    normalised: float | None  # seconds over its GEMM reference from the same run; None where not recorded


@dataclass(frozen=True)
class Run:
    source: str  # the saved file
    when: str  # ISO time the run was saved (UTC)
    commit: str  # short id; '+' when the tree had uncommitted changes
    machine_kind: str
    figures: dict[str, Figure]  # by benchmark name, e.g. 'test_generation[numba-small-128]'

    @property
    def label(self) -> str:
        return f"{self.commit} {self.when[5:16].replace('T', ' ')}"


def _run(source: str, data: dict) -> Run:
    commit = data.get("commit_info", {})
    figures = {}
    for bench in data["benchmarks"]:
        extra = bench.get("extra_info", {})
        figures[bench["name"]] = Figure(extra.get("ms_per_shower", 1e3 * bench["stats"]["min"]),
                                        extra.get("normalised"))
    return Run(source, data["datetime"], commit.get("id", "unknown")[:7] + ("+" if commit.get("dirty") else ""),
               data.get("machine_info", {}).get("machine_kind", "unknown"), figures)


def load_runs(*folders: str | Path) -> list[Run]:
    """Every run pytest-benchmark saved in the folders (and their machine-id subfolders), oldest first."""
    try:
        from pytest_benchmark.logger import Logger
        from pytest_benchmark.utils import load_storage
    except ImportError:
        raise ConfigError("reading saved benchmark runs needs pytest-benchmark: pip install -e '.[dev]'") from None
    runs = []
    for folder in folders:
        if not Path(folder).is_dir():  # checked first: pytest-benchmark's storage would create it
            raise ConfigError(f"no saved benchmark runs: {folder} is not a folder (run `pytest --benchmark-only`)")
        storage = load_storage(str(folder), logger=Logger(), netrc=None)
        runs += [_run(str(Path(folder) / path), data) for path, data in storage.load()]
    return sorted(runs, key=lambda run: run.when)


def of_newest_kind(runs: list[Run]) -> list[Run]:
    """The runs taken on the same machine kind as the newest one."""
    return [run for run in runs if run.machine_kind == runs[-1].machine_kind] if runs else []


def spread(values: list[float]) -> float:
    """max / min - 1 of positive values: how far apart the slowest and the fastest of them are."""
    return max(values) / min(values) - 1 if values else float("nan")


def format_history(runs: list[Run]) -> str:
    """Two tables, ms and the normalised figure, one row per benchmark and one column per run, with the
    spread (max/min - 1) over the runs."""
    names = sorted({name for run in runs for name in run.figures})
    tables = (("ms/shower (training iteration: ms)", "ms"), ("normalised (time / GEMM reference)", "normalised"))
    width = max(len(text) for text in names + [title for title, _ in tables])
    lines = [f"run {i + 1}: {run.label}  {run.source}" for i, run in enumerate(runs)]
    for title, field in tables:
        lines += ["", f"{title:<{width}}  " + "  ".join(f"{f'run {i + 1}':>8}" for i in range(len(runs)))
                  + f"  {'spread':>7}"]
        for name in names:
            values = [getattr(run.figures[name], field) if name in run.figures else None for run in runs]
            shown = [v for v in values if v is not None]
            if not shown:
                continue
            cells = "  ".join(f"{v:>8.4g}" if v is not None else f"{'-':>8}" for v in values)
            lines.append(f"{name:<{width}}  {cells}  {100 * spread(shown):>6.1f}%")
    return "\n".join(lines)


@dataclass(frozen=True)
class GateRow:
    name: str
    latest: float
    best: float | None  # the best (lowest) normalised figure of the last runs before; None: nothing to compare
    change_pct: float | None
    slower: bool


def gate(runs: list[Run], fail_if_slower_pct: float, window: int = 5) -> list[GateRow]:
    """The newest run's normalised figures against the best of the ``window`` runs before it that hold the same
    benchmark; slower means more than ``fail_if_slower_pct`` percent above that best (pytest-benchmark's own
    percentage check, applied to the normalised figure instead of a time)."""
    from pytest_benchmark.utils import PercentageRegressionCheck

    check = PercentageRegressionCheck("normalised", fail_if_slower_pct)
    latest, earlier = runs[-1], runs[:-1]
    rows = []
    for name, figure in sorted(latest.figures.items()):
        if figure.normalised is None:
            continue
        before = [run.figures[name].normalised for run in earlier
                  if name in run.figures and run.figures[name].normalised is not None][-window:]
        if not before:
            rows.append(GateRow(name, figure.normalised, None, None, False))
            continue
        now, best = {"normalised": figure.normalised}, {"normalised": min(before)}
        rows.append(GateRow(name, figure.normalised, min(before), check.compute(now, best),
                            bool(check.fails(now, best))))
    return rows


def gate_passes(rows: list[GateRow]) -> bool:
    """True when something was compared and nothing was slower: a gate that compared nothing does not pass."""
    return any(row.best is not None for row in rows) and not any(row.slower for row in rows)


def format_gate(rows: list[GateRow], fail_if_slower_pct: float, window: int) -> str:
    if not rows:
        return "gate: FAILED - the newest run has no benchmark with a normalised figure"
    width = max(len(row.name) for row in rows)
    lines = [f"gate: newest run's normalised figure against the best of the {window} runs before it, "
             f"fails above +{fail_if_slower_pct:g}%",
             f"{'benchmark':<{width}}  {'newest':>8}  {'best':>8}  {'change':>8}"]
    for row in rows:
        if row.best is None:
            lines.append(f"{row.name:<{width}}  {row.latest:>8.4g}  {'-':>8}  {'-':>8}  new: no earlier run")
        else:
            lines.append(f"{row.name:<{width}}  {row.latest:>8.4g}  {row.best:>8.4g}  {row.change_pct:>+7.1f}%  "
                         + ("SLOWER" if row.slower else "ok"))
    if not any(row.best is not None for row in rows):
        lines.append("gate: FAILED - nothing to compare with (save a baseline, see README 'Tracking speed')")
    else:
        lines.append("gate: " + ("passed" if gate_passes(rows) else "FAILED - slower than allowed"))
    return "\n".join(lines)


def history_report(storage: str | Path = DEFAULT_STORAGE, baselines: str | Path | None = DEFAULT_BASELINES,
                   fail_if_slower_pct: float | None = None, window: int = 5, plot: str | Path | None = None,
                   last: int = 8) -> tuple[str, bool]:
    """What `calosim bench --history` prints, and whether the gate passed (True when not asked for). The table
    shows the ``last`` runs of the newest run's machine kind; the plot (default STORAGE/history.png) all of them.
    ``baselines`` is read when it exists, so a fresh clone compares its first run with the committed baseline."""
    from calosim.bench_plot import plot_history

    folders = [storage] + ([baselines] if baselines is not None and Path(baselines).is_dir() else [])
    everything = load_runs(*folders)
    runs = of_newest_kind(everything)
    if not runs:
        raise ConfigError(f"no saved benchmark runs in {', '.join(map(str, folders))} (run `pytest --benchmark-only`)")
    path = plot_history(runs, plot or Path(storage) / "history.png")
    lines = [f"{len(runs)} saved runs on {runs[-1].machine_kind} ({len(everything) - len(runs)} of other machine "
             f"kinds left out); plot: {path}", format_history(runs[-last:])]
    passed = True
    if fail_if_slower_pct is not None:
        rows = gate(runs, fail_if_slower_pct, window)
        passed = gate_passes(rows)
        lines += ["", format_gate(rows, fail_if_slower_pct, window)]
    return "\n".join(lines), passed
