"""Memorisation check: does the generator copy its training showers?

Each shower becomes a normalised cell vector (cells / sum of cells, so only the shape counts). For a sample
of generated showers we take the Euclidean distance to the nearest training shower, and the same for a
sample of held-out reference showers (never trained on). A faithful generator sits as far from the training
set as fresh Geant4 showers do (ratio of medians ~1); one that copies its training set sits much closer
(ratio -> 0, many near-zero distances).
"""

from __future__ import annotations

import numpy as np

RATIO_FLAG = 0.5  # flag when median(d_gen) < RATIO_FLAG * median(d_ref)
CLOSE_QUANTILE = 0.01  # "too close": below the 1% quantile of the reference distances
CLOSE_FLAG = 0.10  # flag when more than 10% of generated showers are "too close" (1% expected)


def normalised_cells(flat_cells: np.ndarray) -> np.ndarray:
    """(N, V) MeV -> (N, V) float64 with each row summing to 1 (empty showers stay zero)."""
    x = np.asarray(flat_cells, np.float64)
    s = x.sum(axis=1, keepdims=True)
    return np.divide(x, s, out=np.zeros_like(x), where=s > 0)


def nearest_distances(queries: np.ndarray, bank: np.ndarray, chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distance of every query row (M, V) to its nearest bank row (K, V), and that row's index.

    Computed in chunks as ||q||^2 + ||b||^2 - 2 q.b (float64, clipped at 0). Returns ((M,), (M,) int).
    """
    q = np.asarray(queries, np.float64)
    b = np.asarray(bank, np.float64)
    bn = np.einsum("ij,ij->i", b, b)
    dist = np.empty(q.shape[0])
    index = np.empty(q.shape[0], np.int64)
    for i in range(0, q.shape[0], chunk):
        qc = q[i:i + chunk]
        d2 = np.einsum("ij,ij->i", qc, qc)[:, None] + bn[None, :] - 2.0 * (qc @ b.T)
        j = np.argmin(d2, axis=1)
        index[i:i + chunk] = j
        dist[i:i + chunk] = np.sqrt(np.maximum(d2[np.arange(len(j)), j], 0.0))
    return dist, index


def memorisation_check(generated: np.ndarray, reference: np.ndarray, train: np.ndarray, n_samples: int = 1000,
                       rng: np.random.Generator | None = None) -> dict:
    """Nearest-training-shower distances of generated vs held-out reference showers.

    generated, reference, train: (N, V) cells in MeV (flattened layers). Up to ``n_samples`` showers of
    ``generated`` and of ``reference`` are drawn (``rng``); all of ``train`` is the bank.

    Returns a JSON-able dict: median_gen, median_ref, ratio = median_gen / median_ref, the 1% quantile of the
    reference distances q01_ref, frac_gen_close (fraction of generated showers closer than q01_ref; ~0.01
    expected), n_exact_copies (distance < 1e-6), flag (True when ratio < 0.5 or frac_gen_close > 0.1) and a
    one-line verdict; also quantiles (5/25/50/75/95%) of both distance samples.
    """
    rng = rng or np.random.default_rng(0)

    def pick(x):
        x = np.asarray(x)
        if x.shape[0] > n_samples:
            x = x[np.sort(rng.choice(x.shape[0], n_samples, replace=False))]
        return normalised_cells(x)

    bank = normalised_cells(train)
    d_gen, _ = nearest_distances(pick(generated), bank)
    d_ref, _ = nearest_distances(pick(reference), bank)
    med_gen, med_ref = float(np.median(d_gen)), float(np.median(d_ref))
    ratio = med_gen / med_ref if med_ref > 0 else float("nan")
    q01 = float(np.quantile(d_ref, CLOSE_QUANTILE))
    frac_close = float(np.mean(d_gen < q01)) if q01 > 0 else float(np.mean(d_gen <= 1e-6))
    n_copies = int(np.sum(d_gen < 1e-6))
    flag = bool((np.isfinite(ratio) and ratio < RATIO_FLAG) or frac_close > CLOSE_FLAG)
    if med_ref == 0:
        verdict = "the reference showers are in the training file: the check needs held-out reference showers"
    elif flag:
        verdict = (f"SUSPICIOUS: generated showers sit {ratio:.2f}x as far from the training set as held-out "
                   f"showers; {100 * frac_close:.1f}% closer than the reference's 1% quantile, "
                   f"{n_copies} exact copies")
    else:
        verdict = f"ok: generated showers are as far from the training set as held-out showers (ratio {ratio:.2f})"
    qs = [0.05, 0.25, 0.5, 0.75, 0.95]
    return {
        "n_gen": int(d_gen.size), "n_ref": int(d_ref.size), "n_train": int(bank.shape[0]),
        "median_gen": med_gen, "median_ref": med_ref, "ratio": ratio, "q01_ref": q01,
        "frac_gen_close": frac_close, "n_exact_copies": n_copies, "flag": flag, "verdict": verdict,
        "quantiles": [float(q) for q in qs],
        "quantiles_gen": [float(v) for v in np.quantile(d_gen, qs)],
        "quantiles_ref": [float(v) for v in np.quantile(d_ref, qs)],
    }
