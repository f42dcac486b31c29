"""Figures in the style of the CaloGAN paper: observable histograms (reference vs generated, ratio panel),
average shower images per layer side by side on a log colour scale, and the cell-energy spectra per layer.
Matplotlib's Agg backend only (no display needed); every function writes one PNG and returns its path."""

from __future__ import annotations

from pathlib import Path

import numpy as np

REF_STYLE = {"color": "#1f1f1f", "label": "reference"}
GEN_STYLE = {"color": "#d62728", "label": "generated"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _plot_edges(ref: np.ndarray, gen: np.ndarray, n_bins: int = 40) -> np.ndarray:
    """Bins for display: one per value for discrete observables, else uniform over the pooled 0.1-99.9%."""
    pooled = np.concatenate([ref, gen])
    pooled = pooled[np.isfinite(pooled)]
    if pooled.size == 0:
        return np.linspace(0, 1, n_bins + 1)
    values = np.unique(pooled)
    if values.size <= 12:
        if values.size == 1:
            return np.array([values[0] - 0.5, values[0] + 0.5])
        mid = 0.5 * (values[1:] + values[:-1])
        first, last = values[0] - (mid[0] - values[0]), values[-1] + (values[-1] - mid[-1])
        return np.concatenate([[first], mid, [last]])
    lo, hi = np.quantile(pooled, [0.001, 0.999])
    if hi <= lo:
        lo, hi = pooled.min(), pooled.max() + 1e-9
    return np.linspace(lo, hi, n_bins + 1)


def plot_observable(name: str, ref: np.ndarray, gen: np.ndarray, path, unit: str = "",
                    metrics: dict | None = None, labels=("reference", "generated")) -> Path:
    """Unit-normalised histograms of one observable (reference filled grey, generated red line) with a
    generated / reference ratio panel below (statistical errors of the generated counts)."""
    plt = _pyplot()
    ref = np.asarray(ref, np.float64)
    gen = np.asarray(gen, np.float64)
    edges = _plot_edges(ref, gen)
    hr, _ = np.histogram(np.clip(ref, edges[0], edges[-1]), edges)
    hg, _ = np.histogram(np.clip(gen, edges[0], edges[-1]), edges)
    width = np.diff(edges)
    pr = hr / max(hr.sum(), 1) / width
    pg = hg / max(hg.sum(), 1) / width
    centres = 0.5 * (edges[1:] + edges[:-1])

    fig, (ax, rax) = plt.subplots(2, 1, figsize=(5.2, 4.8), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05})
    ax.stairs(pr, edges, fill=True, color="0.8", label=f"{labels[0]} ({ref.size})")
    ax.stairs(pr, edges, color=REF_STYLE["color"], linewidth=1.0)
    ax.stairs(pg, edges, color=GEN_STYLE["color"], linewidth=1.5, label=f"{labels[1]} ({gen.size})")
    ax.set_ylabel("normalised entries")
    positive = np.concatenate([pr[pr > 0], pg[pg > 0]])
    if positive.size and positive.min() < 1e-2 * positive.max():
        ax.set_yscale("log")
    title = name
    if metrics:
        title += f"   S = {metrics.get('sep_power', float('nan')):.3f}, KS = {metrics.get('ks', float('nan')):.3f}"
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(hr > 0, pg / pr, np.nan)
        err = np.where((hr > 0) & (hg > 0), ratio / np.sqrt(np.maximum(hg, 1)), np.nan)
    rax.errorbar(centres, ratio, yerr=err, fmt="o", markersize=2.5, color=GEN_STYLE["color"], elinewidth=0.8)
    rax.axhline(1.0, color="0.3", linewidth=0.8)
    rax.set_ylim(0.0, 2.0)
    rax.set_ylabel("gen / ref")
    rax.set_xlabel(f"{name} [{unit}]" if unit else name)
    path = Path(path)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_average_images(ref_layers, gen_layers, path, geometry=None, labels=("reference", "generated")) -> Path:
    """Average shower per layer: one row per sample, one column per layer, log colour scale shared within
    each layer (MeV per cell). Cartesian layers are drawn at their physical extent in mm."""
    plt = _pyplot()
    from matplotlib.colors import LogNorm

    n_layers = len(ref_layers)
    means = [[np.asarray(layer, np.float64).mean(axis=0) for layer in sample] for sample in (ref_layers, gen_layers)]
    fig, axes = plt.subplots(2, n_layers, figsize=(3.2 * n_layers + 0.6, 6.0), squeeze=False,
                             constrained_layout=True)
    for j in range(n_layers):
        positive = np.concatenate([m[j][m[j] > 0].ravel() for m in means])
        vmax = float(positive.max()) if positive.size else 1.0
        vmin = max(float(positive.min()) if positive.size else 1e-3, vmax * 1e-5)
        norm = LogNorm(vmin=vmin, vmax=vmax)
        lg = geometry.layers[j] if geometry is not None else None
        extent, aspect = None, "auto"
        if lg is not None and not lg.polar:
            r, c = lg.row_edges(), lg.col_edges()
            extent, aspect = (c[0], c[-1], r[-1], r[0]), "equal"
        for i, m in enumerate(means):
            ax = axes[i, j]
            img = np.where(m[j] > 0, m[j], np.nan)
            im = ax.imshow(img, norm=norm, cmap="viridis", extent=extent, aspect=aspect, interpolation="nearest")
            name = lg.name if lg is not None else f"layer_{j}"
            ax.set_title(f"{labels[i]}: {name}", fontsize=9)
            if extent is not None:
                ax.set_xlabel("y [mm]", fontsize=8)
                ax.set_ylabel("x [mm]", fontsize=8)
            else:
                ax.set_xlabel("column" if lg is None or not lg.polar else "radial bin", fontsize=8)
                ax.set_ylabel("row" if lg is None or not lg.polar else "angular bin", fontsize=8)
            ax.tick_params(labelsize=7)
        fig.colorbar(im, ax=axes[:, j], shrink=0.8, label="mean energy per cell [MeV]")
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_roc(labels_scores: dict[str, tuple[np.ndarray, np.ndarray]], path) -> Path:
    """ROC curves of the classifier tests: {name: (labels, scores)}."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    for name, (y, s) in labels_scores.items():
        y = np.asarray(y).astype(bool)
        order = np.argsort(-np.asarray(s), kind="mergesort")
        tpr = np.concatenate([[0], np.cumsum(y[order]) / max(y.sum(), 1)])
        fpr = np.concatenate([[0], np.cumsum(~y[order]) / max((~y).sum(), 1)])
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(fontsize=8, frameon=False)
    path = Path(path)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_cell_spectra(ref_cells: list[np.ndarray], gen_cells: list[np.ndarray], path, layer_names: list[str],
                      metrics: dict | None = None, labels=("reference", "generated"), n_bins: int = 50) -> Path:
    """The spectrum of non-zero cell energies per layer (one panel each): unit-normalised histograms over
    log-spaced bins (MeV, log axes; cells outside the range drawn in the edge bins), each sample's 1%
    quantile as a dashed line. ``metrics``: compare_cell_spectra()["layers"], for each layer's binning range
    (log10_range_mev; the pooled range without it) and separation power."""
    plt = _pyplot()
    n_layers = len(layer_names)
    fig, axes = plt.subplots(1, n_layers, figsize=(4.0 * n_layers, 3.6), squeeze=False, constrained_layout=True)
    for j, name in enumerate(layer_names):
        ax = axes[0, j]
        ref, gen = np.asarray(ref_cells[j], np.float64), np.asarray(gen_cells[j], np.float64)
        pooled = np.concatenate([ref, gen])
        if pooled.size == 0:
            ax.set_title(f"{name}: no non-zero cells", fontsize=9)
            continue
        m = (metrics or {}).get(name) or {}
        lo, hi = m.get("log10_range_mev") or np.log10([pooled.min(), pooled.max()])
        edges = np.logspace(lo, hi if hi > lo else lo + 1.0, n_bins + 1)
        for cells, style, label in ((ref, REF_STYLE, labels[0]), (gen, GEN_STYLE, labels[1])):
            if cells.size == 0:
                continue
            fraction = np.histogram(np.clip(cells, edges[0], edges[-1]), edges)[0] / cells.size
            if style is REF_STYLE:
                ax.stairs(fraction, edges, fill=True, color="0.8")
            ax.stairs(fraction, edges, color=style["color"], linewidth=1.3, label=f"{label} ({cells.size} cells)")
            ax.axvline(np.quantile(cells, 0.01), color=style["color"], linestyle="--", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("cell energy [MeV] (non-zero cells)", fontsize=8)
        ax.set_ylabel("fraction of cells per bin", fontsize=8)
        title = name
        if m.get("sep_power") is not None:
            title += f"   S = {m['sep_power']:.3f}"
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, frameon=False, title="dashed: 1% quantiles", title_fontsize=7)
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
