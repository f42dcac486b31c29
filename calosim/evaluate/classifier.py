"""The CaloChallenge classifier test, built from calosim's own layers on a calosim backend.

A DNN learns to tell generated (label 1) from reference (label 0) showers. Inputs:

- low level:  [log10(E_inc / GeV), cells / E_inc] per shower (cells in MeV, E_inc in MeV: a fraction),
- high level: the shower observables, standardised with the training split's mean and std.

The balanced sample is split 60/20/20 into train / test / validation (stratified); the epoch with the best
test accuracy is kept; its AUC is measured on the independent validation split, raw and after isotonic
calibration fitted on the test split (pool-adjacent-violators). AUC 0.5: indistinguishable; 1: separable.
Default net: Dense 256 -> LeakyReLU(0.2) -> Dense 256 -> LeakyReLU(0.2) -> Dense 1, 30 epochs of Adam 1e-3,
batch 128 (seconds on 2 cores for a few thousand showers per class); ``ClassifierConfig.spec()`` is the
CaloChallenge net (3 x 2048, Adam 2e-4, batch 1000).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

EPS = 1e-12


@dataclass
class ClassifierConfig:
    hidden: tuple[int, ...] = (256, 256)
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    alpha: float = 0.2  # LeakyReLU slope
    split: tuple[float, float, float] = (0.6, 0.2, 0.2)  # train, test, validation
    calibrate: bool = True
    patience: int | None = 10  # stop after this many epochs without a better test accuracy (None: never)

    @classmethod
    def spec(cls) -> ClassifierConfig:
        """The CaloChallenge classifier: 2048 -> 2048 -> 2048, Adam 2e-4, batch 1000."""
        return cls(hidden=(2048, 2048, 2048), epochs=50, batch_size=1000, lr=2e-4, patience=None)


# ---------------------------------------------------------------------------------------------- scores
def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve from ranks (Mann-Whitney U; ties get average ranks). labels in {0, 1}."""
    y = np.asarray(labels).ravel().astype(bool)
    s = np.asarray(scores, np.float64).ravel()
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(s.size, np.float64)
    # average rank (1-based) of each run of equal scores
    start = np.concatenate([[0], np.nonzero(np.diff(sorted_s))[0] + 1])
    stop = np.concatenate([start[1:], [s.size]])
    avg = 0.5 * (start + stop + 1)
    ranks[order] = np.repeat(avg, stop - start)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def isotonic_fit(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pool-adjacent-violators: the non-decreasing step function of ``scores`` closest (least squares) to
    ``labels``. Returns (x, y): block boundaries' scores and fitted values, for ``isotonic_predict``."""
    s = np.asarray(scores, np.float64).ravel()
    t = np.asarray(labels, np.float64).ravel()
    order = np.argsort(s, kind="mergesort")
    s, t = s[order], t[order]
    # merge equal scores first (they must share a value)
    uniq, inv = np.unique(s, return_inverse=True)
    w = np.bincount(inv).astype(np.float64)
    v = np.bincount(inv, weights=t) / w
    vals, wts, xs = [], [], []
    for i in range(uniq.size):
        vals.append(v[i])
        wts.append(w[i])
        xs.append(uniq[i])
        while len(vals) > 1 and vals[-2] > vals[-1]:
            wsum = wts[-2] + wts[-1]
            merged = (vals[-2] * wts[-2] + vals[-1] * wts[-1]) / wsum
            vals[-2:] = [merged]
            wts[-2:] = [wsum]
            xs.pop()  # the merged block starts at the earlier boundary
    # block i covers scores from xs[i] up to (not including) xs[i+1]
    return np.asarray(xs), np.asarray(vals)


def isotonic_predict(model: tuple[np.ndarray, np.ndarray], scores: np.ndarray) -> np.ndarray:
    """Apply an ``isotonic_fit`` step function (constant beyond both ends)."""
    xs, vals = model
    idx = np.clip(np.searchsorted(xs, np.asarray(scores, np.float64), side="right") - 1, 0, len(vals) - 1)
    return vals[idx]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, np.float64)))


def _bce(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


# ---------------------------------------------------------------------------------------------- features
def low_level_features(layers, energy_gev: np.ndarray) -> np.ndarray:
    """(N, 1 + V) float32: [log10(E_inc / GeV), cells / E_inc] (both energies in MeV for the fraction)."""
    e = np.asarray(energy_gev, np.float64).reshape(-1)
    cells = np.concatenate([np.asarray(layer).reshape(len(e), -1) for layer in layers], axis=1)
    return np.concatenate([np.log10(e)[:, None], cells / (1000.0 * e[:, None])], axis=1).astype(np.float32)


def high_level_features(observables: dict[str, np.ndarray], energy_gev: np.ndarray) -> np.ndarray:
    """(N, 1 + n_obs) float64: log10 E_inc and every observable (energies as log10(1 + E / MeV), so that
    standardisation sees comparable spreads). Standardised later, on the training split."""
    cols = [np.log10(np.asarray(energy_gev, np.float64).reshape(-1))]
    for name, v in observables.items():
        v = np.asarray(v, np.float64)
        if name.startswith("E_") and not name.startswith("E_ratio") or name == "lateral_depth":
            v = np.log10(1.0 + np.maximum(v, 0.0))
        cols.append(v)
    return np.stack(cols, axis=1)


# ---------------------------------------------------------------------------------------------- training
def split_indices(labels: np.ndarray, fractions, rng: np.random.Generator) -> list[np.ndarray]:
    """Stratified random split of range(N) into len(fractions) index arrays (each class split alike)."""
    labels = np.asarray(labels).ravel()
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    cum = np.cumsum(fractions) / np.sum(fractions)
    for cls in np.unique(labels):
        idx = rng.permutation(np.nonzero(labels == cls)[0])
        cuts = np.round(cum * idx.size).astype(int)
        lo = 0
        for k, hi in enumerate(cuts):
            parts[k].append(idx[lo:hi])
            lo = hi
    return [np.sort(np.concatenate(p)) for p in parts]


def _predict(net, be, x: np.ndarray, batch: int = 4096) -> np.ndarray:
    out = []
    for i in range(0, x.shape[0], batch):
        logits = net.forward(be.asarray(x[i:i + batch]), training=False)
        out.append(np.asarray(be.to_numpy(logits), np.float64).reshape(-1))
    return np.concatenate(out) if out else np.zeros(0)


def classifier_test(x_ref: np.ndarray, x_gen: np.ndarray, backend: str = "numpy",
                    config: ClassifierConfig | None = None, seed: int = 0, standardise: bool = True,
                    energy_ref: np.ndarray | None = None, energy_gen: np.ndarray | None = None,
                    energy_ranges: list[tuple[float, float]] | None = None, return_scores: bool = False) -> dict:
    """Train a classifier reference (0) vs generated (1) on features (N_ref, F) and (N_gen, F).

    The larger class is subsampled to the size of the smaller one. ``standardise``: scale each feature by
    the training split's mean and std (std floored at 1e-6 of the largest). Energies (GeV, per row of x_ref /
    x_gen) with ``energy_ranges`` add a per-range AUC on the validation split.

    Returns a JSON-able dict: auc (validation, raw), auc_calibrated, accuracy (validation, threshold 0.5),
    best_epoch (1-based), test_accuracy (at the best epoch), val_loss (BCE), history (per epoch train loss
    and test accuracy), n_train / n_test / n_val, config, and per_energy_range [{range, label, auc}];
    with ``return_scores`` also val_labels and val_scores (NumPy arrays, not JSON-able) for ROC curves.
    """
    from calosim.backends import get_backend
    from calosim.evaluate.metrics import in_range, range_label
    from calosim.layers import Dense, LeakyReLU, Sequential
    from calosim.losses import bce_with_logits
    from calosim.optim import Adam

    config = config or ClassifierConfig()
    rng = np.random.default_rng(seed)
    n = min(len(x_ref), len(x_gen))
    if n < 10:
        raise ValueError(f"the classifier test needs at least 10 showers per sample, got {len(x_ref)} and "
                         f"{len(x_gen)}")
    sel_ref = np.sort(rng.choice(len(x_ref), n, replace=False))
    sel_gen = np.sort(rng.choice(len(x_gen), n, replace=False))
    x = np.concatenate([np.asarray(x_ref)[sel_ref], np.asarray(x_gen)[sel_gen]]).astype(np.float64)
    y = np.concatenate([np.zeros(n), np.ones(n)])
    energy = None
    if energy_ref is not None and energy_gen is not None:
        energy = np.concatenate([np.ravel(energy_ref)[sel_ref], np.ravel(energy_gen)[sel_gen]])
    train, test, val = split_indices(y, config.split, rng)

    if standardise:
        mean = x[train].mean(axis=0)
        std = x[train].std(axis=0)
        std = np.maximum(std, 1e-6 * max(float(std.max()), EPS))
        x = (x - mean) / std
    x = x.astype(np.float32)

    be = get_backend(backend)
    layers = []
    for width in config.hidden:
        layers += [Dense(width), LeakyReLU(config.alpha)]
    net = Sequential(layers + [Dense(1)], name="classifier")
    net.build((x.shape[1],), backend=be, rng=np.random.default_rng(rng.integers(2**63)))
    opt = Adam(net.parameters(), lr=config.lr, beta1=0.9, beta2=0.999, backend=be)

    x_train, y_train = x[train], y[train].astype(np.float32)
    best = {"test_accuracy": -1.0}
    history = []
    stale = 0
    for epoch in range(1, config.epochs + 1):
        order = rng.permutation(len(train))
        losses = []
        for i in range(0, len(order), config.batch_size):
            b = order[i:i + config.batch_size]
            logits = net.forward(be.asarray(x_train[b]), training=True)
            loss, dlogits = bce_with_logits(logits, be.asarray(y_train[b].reshape(-1, 1)), be.xp)
            net.backward(dlogits)
            opt.step()
            losses.append(loss * len(b))
        p_test = _sigmoid(_predict(net, be, x[test]))
        acc = float(np.mean((p_test > 0.5) == (y[test] > 0.5)))
        history.append({"epoch": epoch, "train_loss": float(np.sum(losses) / len(order)), "test_accuracy": acc})
        if acc > best["test_accuracy"]:
            best = {"test_accuracy": acc, "epoch": epoch, "p_test": p_test,
                    "p_val": _sigmoid(_predict(net, be, x[val]))}
            stale = 0
        else:
            stale += 1
            if config.patience is not None and stale >= config.patience:
                break

    p_val, y_val = best["p_val"], y[val]
    result = {
        "auc": roc_auc(y_val, p_val),
        "accuracy": float(np.mean((p_val > 0.5) == (y_val > 0.5))),
        "val_loss": _bce(p_val, y_val),
        "best_epoch": best["epoch"],
        "test_accuracy": best["test_accuracy"],
        "epochs_run": len(history),
        "n_train": int(len(train)), "n_test": int(len(test)), "n_val": int(len(val)),
        "n_features": int(x.shape[1]),
        "backend": backend,
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()},
        "history": history,
    }
    scores = p_val
    if config.calibrate:
        model = isotonic_fit(best["p_test"], y[test])
        scores = isotonic_predict(model, p_val)
        result["auc_calibrated"] = roc_auc(y_val, scores)
        result["val_loss_calibrated"] = _bce(scores, y_val)
    if energy is not None and energy_ranges:
        e_val = energy[val]
        rows = []
        for lo, hi in energy_ranges:
            m = in_range(e_val, lo, hi)
            rows.append({"range": [lo, hi], "label": range_label(lo, hi), "n_val": int(m.sum()),
                         "auc": roc_auc(y_val[m], p_val[m]) if m.any() else float("nan")})
        result["per_energy_range"] = rows
    if return_scores:
        result["val_labels"], result["val_scores"] = y_val, p_val
    return result
