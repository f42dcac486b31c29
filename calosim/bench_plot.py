"""The PNG of `calosim bench --history`: ms/shower and the normalised figure of each benchmark over saved runs."""

from __future__ import annotations

from pathlib import Path

from calosim.bench_history import Run


def plot_history(runs: list[Run], path: str | Path) -> Path:
    """Two panels sharing the x axis (one tick per run: commit and time), one line per benchmark; log y axes,
    because batch 1 and batch 1024, or a shower and a training iteration, lie orders of magnitude apart."""
    # The figure and its Agg canvas directly, not pyplot: no global backend switch inside a library call.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import ScalarFormatter

    names = sorted({name for run in runs for name in run.figures})
    fig = Figure(figsize=(11, 7.5), layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True)
    for name in names:
        points = [(i, run.figures[name]) for i, run in enumerate(runs) if name in run.figures]
        line, = top.plot([i for i, _ in points], [f.ms for _, f in points], marker="o", label=name)
        normalised = [(i, f.normalised) for i, f in points if f.normalised is not None]
        bottom.plot([i for i, _ in normalised], [v for _, v in normalised], marker="o", color=line.get_color())
    top.set_yscale("log")
    top.set_ylabel("ms per shower\n(training: ms per iteration)")
    bottom.set_yscale("log")
    for axis in (bottom.yaxis.set_major_formatter, bottom.yaxis.set_minor_formatter):
        axis(ScalarFormatter())  # 2, 3, 4 rather than 2x10^0: the figure spans less than a decade
    bottom.set_ylabel("normalised\n(time / GEMM of the same shapes)")
    bottom.set_xticks(range(len(runs)), [run.label.replace(" ", "\n", 1) for run in runs], fontsize=8)
    bottom.set_xlabel("saved run (commit, UTC time; + = uncommitted changes)")
    for ax in (top, bottom):
        ax.grid(True, which="both", alpha=0.3)
    top.set_title(f"calosim benchmarks over {len(runs)} saved runs on {runs[-1].machine_kind}")
    fig.legend(loc="outside right upper", fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
