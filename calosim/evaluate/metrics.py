"""Distribution metrics between a reference and a generated sample of one observable (reference section 8).

- Separation power S = 1/2 sum_i (p_i - q_i)^2 / (p_i + q_i) of histograms normalised to unit sum
  (arXiv:2009.03796 eq. 15): 0 for identical, 1 for disjoint samples. Two binnings: 10 equal-population bins
  from quantiles of the pooled sample (CaloGAN) and uniform bins (CaloChallenge style; 50 over the pooled
  range by default, or any fixed edges, values outside them counted in the edge bins).
- Kolmogorov-Smirnov distance sup |F_ref - F_gen| of the two empirical CDFs (pure NumPy).
- ``compare_observables``: all of these per observable, inclusive and per incident-energy range.
"""

from __future__ import annotations

import numpy as np


def histogram_separation(p_counts: np.ndarray, q_counts: np.ndarray) -> float:
    """S of two histograms over the same bins (any non-negative counts; each normalised to unit sum)."""
    p = np.asarray(p_counts, dtype=np.float64)
    q = np.asarray(q_counts, dtype=np.float64)
    if p.sum() <= 0 or q.sum() <= 0:
        return float("nan")
    p, q = p / p.sum(), q / q.sum()
    s = p + q
    nz = s > 0
    return float(0.5 * np.sum((p[nz] - q[nz]) ** 2 / s[nz]))


def quantile_edges(ref: np.ndarray, gen: np.ndarray, n_bins: int = 10) -> np.ndarray:
    """Edges of ``n_bins`` equal-population bins of the pooled sample (CaloGAN's choice).

    Repeated quantiles (an observable with atoms, e.g. max_depth or E_2 = 0) are merged; an observable with
    at most ``n_bins`` distinct values gets one bin per value (edges at the midpoints), so atoms are never
    lumped together.
    """
    pooled = np.concatenate([np.asarray(ref, np.float64).ravel(), np.asarray(gen, np.float64).ravel()])
    pooled = pooled[np.isfinite(pooled)]
    if pooled.size == 0:
        return np.array([0.0, 1.0])
    values = np.unique(pooled)
    if values.size <= n_bins:
        if values.size == 1:
            return np.array([values[0] - 0.5, values[0] + 0.5])
        mid = 0.5 * (values[1:] + values[:-1])
        return np.concatenate([[values[0]], mid, [values[-1]]])
    return np.unique(np.quantile(pooled, np.linspace(0.0, 1.0, n_bins + 1)))


def uniform_edges(ref: np.ndarray, gen: np.ndarray, n_bins: int = 50) -> np.ndarray:
    """``n_bins`` uniform bins over the finite range of the pooled sample (so that nothing is dropped and
    disjoint samples never share a bin)."""
    r = np.concatenate([np.asarray(ref, np.float64).ravel(), np.asarray(gen, np.float64).ravel()])
    r = r[np.isfinite(r)]
    if r.size == 0:
        return np.linspace(0.0, 1.0, n_bins + 1)
    lo, hi = float(r.min()), float(r.max())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, n_bins + 1)


def binned_counts(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of ``x`` in the bins ``edges`` with values below / above folded into the first / last bin
    (NaNs dropped); bins are [e_i, e_i+1), the last one closed."""
    x = np.asarray(x, np.float64).ravel()
    x = x[~np.isnan(x)]
    n = len(edges) - 1
    idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, n - 1)
    return np.bincount(idx, minlength=n)[:n]


def separation_power(ref: np.ndarray, gen: np.ndarray, bins="quantile", n_bins: int | None = None) -> float:
    """Separation power of two samples of one observable.

    bins: "quantile" (``n_bins`` equal-population bins of the pooled sample, default 10), "uniform"
    (``n_bins`` uniform bins over the pooled range, default 50) or an array of edges (values outside them
    are counted in the first / last bin).
    """
    if isinstance(bins, str):
        if bins == "quantile":
            edges = quantile_edges(ref, gen, n_bins or 10)
        elif bins == "uniform":
            edges = uniform_edges(ref, gen, n_bins or 50)
        else:
            raise ValueError(f"bins must be 'quantile', 'uniform' or an array of edges, not {bins!r}")
    else:
        edges = np.asarray(bins, np.float64)
    if np.asarray(ref).size == 0 or np.asarray(gen).size == 0:
        return float("nan")
    return histogram_separation(binned_counts(ref, edges), binned_counts(gen, edges))


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov distance sup_x |F_a(x) - F_b(x)| (NaNs dropped); nan if either is empty."""
    a = np.sort(np.asarray(a, np.float64).ravel())
    b = np.sort(np.asarray(b, np.float64).ravel())
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if a.size == 0 or b.size == 0:
        return float("nan")
    x = np.concatenate([a, b])
    fa = np.searchsorted(a, x, side="right") / a.size
    fb = np.searchsorted(b, x, side="right") / b.size
    return float(np.max(np.abs(fa - fb)))


def default_energy_ranges(energy_gev: np.ndarray, max_points: int = 20) -> list[tuple[float, float]]:
    """Incident-energy ranges (GeV) to report separately: one per energy point when the sample has at most
    ``max_points`` distinct energies (CaloChallenge's discrete energies), otherwise CaloGAN-style ranges
    [1, 10), [10, 25), [25, 50), [50, 75), [75, 100] (the outer edges rounded outwards to the data's floor /
    ceil in GeV; ranges holding nothing dropped)."""
    e = np.asarray(energy_gev, np.float64).ravel()
    values = np.unique(e)
    if values.size <= max_points:
        return [(float(v), float(v)) for v in values]
    edges = [0.0, 10.0, 25.0, 50.0, 75.0, np.inf]
    edges[0] = min(float(np.floor(e.min())), edges[1])
    edges[-1] = max(float(np.ceil(e.max())), edges[-2])
    ranges = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        if np.any(in_range(e, lo, hi)):
            ranges.append((float(lo), float(hi)))
    return ranges


def in_range(energy_gev: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Boolean mask of showers with lo <= E < hi (lo == hi: E == lo within 1e-6 relative; the topmost
    range includes its upper edge)."""
    e = np.asarray(energy_gev, np.float64).ravel()
    if lo == hi:
        return np.isclose(e, lo, rtol=1e-6, atol=0.0)
    return (e >= lo) & ((e < hi) | np.isclose(e, hi, rtol=1e-9, atol=0.0))


def range_label(lo: float, hi: float) -> str:
    return f"{lo:g} GeV" if lo == hi else f"{lo:g}-{hi:g} GeV"


def compare_sample(ref: np.ndarray, gen: np.ndarray, n_quantile_bins: int = 10,
                   n_uniform_bins: int = 50) -> dict[str, float]:
    """The three numbers for one observable: sep_power (quantile bins), sep_power_uniform, ks."""
    return {
        "sep_power": separation_power(ref, gen, "quantile", n_quantile_bins),
        "sep_power_uniform": separation_power(ref, gen, "uniform", n_uniform_bins),
        "ks": ks_distance(ref, gen),
        "n_ref": int(np.asarray(ref).size),
        "n_gen": int(np.asarray(gen).size),
    }


def compare_observables(ref_obs: dict[str, np.ndarray], gen_obs: dict[str, np.ndarray],
                        ref_energy: np.ndarray, gen_energy: np.ndarray,
                        energy_ranges: list[tuple[float, float]] | None = None) -> dict:
    """Metrics of every observable common to both dicts, inclusive and per energy range.

    Returns {"inclusive": {name: {sep_power, sep_power_uniform, ks, n_ref, n_gen}},
             "energy_ranges": [{"range": [lo, hi], "label": str, "observables": {name: {...}}}],
             "mean_sep_power": float (inclusive, quantile bins, averaged over observables)}.
    """
    names = [n for n in ref_obs if n in gen_obs]
    inclusive = {n: compare_sample(ref_obs[n], gen_obs[n]) for n in names}
    if energy_ranges is None:
        energy_ranges = default_energy_ranges(np.concatenate([np.ravel(ref_energy), np.ravel(gen_energy)]))
    per_range = []
    for lo, hi in energy_ranges:
        mr, mg = in_range(ref_energy, lo, hi), in_range(gen_energy, lo, hi)
        if not mr.any() or not mg.any():
            continue
        per_range.append({
            "range": [lo, hi], "label": range_label(lo, hi),
            "observables": {n: compare_sample(ref_obs[n][mr], gen_obs[n][mg]) for n in names},
        })
    sp = [v["sep_power"] for v in inclusive.values() if np.isfinite(v["sep_power"])]
    return {"inclusive": inclusive, "energy_ranges": per_range,
            "mean_sep_power": float(np.mean(sp)) if sp else float("nan")}


def response_core_width(response: np.ndarray) -> float:
    """Half the 16-84% interval of a per-shower response: a Gaussian's sigma, blind to the tails."""
    lo, hi = np.percentile(np.asarray(response, np.float64), [16.0, 84.0])
    return float(0.5 * (hi - lo))
