"""Sample distances on per-shower feature vectors: the Frechet and kernel physics distances (FPD, KPD) of
jetnet (``jetnet.evaluation.fpd`` / ``kpd``, arXiv:2211.10295), which the CaloChallenge evaluation
(arXiv:2410.21611) applies to its high-level features. Pure NumPy, seeded by an explicit Generator.

Notation: X (N_ref, D) reference features, Y (N_gen, D) generated features, any unit (the caller
standardises them); both distances are 0 for identical distributions and grow with the difference.

- FPD: the Frechet distance ||mu_x - mu_y||^2 + tr(C_x + C_y - 2 (C_x C_y)^1/2) of Gaussians fitted to
  batches drawn with replacement, averaged over ``num_batches`` batches at each of ``num_points`` batch
  sizes N spaced evenly in 1/N, then extrapolated to 1/N -> 0 by a straight line fitted with a non-negative
  intercept and slope; the value is the intercept, the error its standard error from the fit.
- KPD: the unbiased estimate of the squared maximum mean discrepancy with the polynomial kernel
  k(x, y) = (x.y / D + 1)^degree on ``num_batches`` batches drawn with replacement; the value is the
  median over batches, the error half the 16.275-83.725 percentile interval (a Gaussian's +-1 sigma).

With the same Generator seed (``np.random.default_rng(seed)``), ``fpd`` draws the same batches as jetnet's
``fpd(..., seed=seed)``; jetnet's ``kpd`` seeds one Generator per batch instead, so KPD agrees with it
within the error only.
"""

from __future__ import annotations

import numpy as np

# jetnet's kernel degree (jetnet 0.2.5: ``_mmd_poly_quadratic_unbiased(..., degree=4)``); the KID of image
# generation uses 3.
KPD_KERNEL_DEGREE = 4


def max_abs_normalise(x_ref: np.ndarray, x_gen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both samples divided, per feature, by the reference's largest |value| (features that are all 0 are
    left alone): jetnet's ``normalise=True``, so that no feature dominates the distances by its scale."""
    x_ref = np.asarray(x_ref, np.float64)
    scale = np.max(np.abs(x_ref), axis=0)
    scale[scale == 0] = 1.0
    return x_ref / scale, np.asarray(x_gen, np.float64) / scale


def _psd_sqrt(c: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (negative rounding noise in its
    eigenvalues clipped to 0)."""
    w, v = np.linalg.eigh(c)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def trace_sqrt_product(c1: np.ndarray, c2: np.ndarray) -> float:
    """tr((C1 C2)^1/2) of two symmetric PSD (D, D) matrices.

    C1 C2 is not symmetric, but it is similar to C1^1/2 C2 C1^1/2, which is symmetric PSD: the trace is the
    sum of the square roots of that matrix's eigenvalues, with no general matrix square root (scipy's
    sqrtm, which jetnet uses) and no imaginary rounding parts to discard.
    """
    r = _psd_sqrt(np.atleast_2d(c1))
    inner = r @ np.atleast_2d(c2) @ r
    eig = np.linalg.eigvalsh(0.5 * (inner + inner.T))
    return float(np.sum(np.sqrt(np.clip(eig, 0.0, None))))


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """Squared Frechet (2-Wasserstein) distance of the Gaussians N(mu1, cov1) and N(mu2, cov2):
    ||mu1 - mu2||^2 + tr(cov1) + tr(cov2) - 2 tr((cov1 cov2)^1/2). mu (D,), cov (D, D)."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    cov1, cov2 = np.atleast_2d(cov1).astype(np.float64), np.atleast_2d(cov2).astype(np.float64)
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shapes do not match: mu {mu1.shape} / {mu2.shape}, cov {cov1.shape} / {cov2.shape}")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt_product(cov1, cov2))


def frechet_distance_of_samples(x: np.ndarray, y: np.ndarray) -> float:
    """Frechet distance of Gaussians with the samples' means and (N - 1)-normalised covariances;
    x (N_x, D), y (N_y, D)."""
    return frechet_distance(x.mean(axis=0), np.cov(x, rowvar=False), y.mean(axis=0), np.cov(y, rowvar=False))


def fpd_batch_sizes(min_samples: int, max_samples: int, num_points: int) -> np.ndarray:
    """``num_points`` batch sizes from ``min_samples`` to ``max_samples``, evenly spaced in 1/N (rounded
    down, as jetnet does)."""
    return (1.0 / np.linspace(1.0 / min_samples, 1.0 / max_samples, num_points)).astype(np.int64)


def nonnegative_line_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares line y = a + b x with a >= 0 and b >= 0. Returns (a, b, standard error of a).

    The error is what scipy's curve_fit reports (jetnet's fit): the unconstrained covariance
    (J^T J)^-1 scaled by the residual variance SSR / (n - 2), evaluated at the constrained optimum.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    design = np.stack([np.ones_like(x), x], axis=1)
    a, b = np.linalg.lstsq(design, y, rcond=None)[0]
    if a < 0 or b < 0:
        # the optimum lies on the boundary: one parameter at 0 and the other fitted alone (or both 0)
        b_only = max(float(x @ y / (x @ x)), 0.0) if x @ x > 0 else 0.0
        a_only = max(float(y.mean()), 0.0)
        candidates = [(0.0, b_only), (a_only, 0.0), (0.0, 0.0)]
        a, b = min(candidates, key=lambda ab: float(np.sum((y - ab[0] - ab[1] * x) ** 2)))
    residual = y - a - b * x
    dof = max(x.size - 2, 1)
    cov = np.linalg.pinv(design.T @ design) * float(residual @ residual) / dof
    return float(a), float(b), float(np.sqrt(cov[0, 0]))


def fpd(x_ref: np.ndarray, x_gen: np.ndarray, rng: np.random.Generator, min_samples: int = 20_000,
        max_samples: int = 50_000, num_batches: int = 20, num_points: int = 10,
        normalise: bool = True) -> dict:
    """Frechet physics distance of two feature samples, extrapolated to infinite batch size.

    x_ref (N_ref, D), x_gen (N_gen, D); jetnet's defaults (which assume 50,000 or more per sample).
    Returns {"value", "error", "batch_sizes", "batches_per_size", "mean_distance"} (the mean Frechet
    distance per batch size).
    """
    x_ref, x_gen = _check_features(x_ref, x_gen)
    if normalise:
        x_ref, x_gen = max_abs_normalise(x_ref, x_gen)
    sizes = fpd_batch_sizes(min_samples, max_samples, num_points)
    means = []
    for size in sizes:
        batch = []
        for _ in range(num_batches):
            # reference then generated indices, in jetnet's order, so that one seed draws the same batches
            idx_ref = rng.choice(len(x_ref), size=size)
            idx_gen = rng.choice(len(x_gen), size=size)
            batch.append(frechet_distance_of_samples(x_ref[idx_ref], x_gen[idx_gen]))
        means.append(float(np.mean(batch)))
    value, _, error = nonnegative_line_fit(1.0 / sizes, np.array(means))
    return {"value": value, "error": error, "batch_sizes": sizes.tolist(), "batches_per_size": num_batches,
            "mean_distance": means}


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = KPD_KERNEL_DEGREE) -> np.ndarray:
    """(N_x, N_y) kernel matrix (x.y / D + 1)^degree of x (N_x, D) and y (N_y, D)."""
    base = x @ y.T
    base /= x.shape[-1]
    base += 1.0
    if degree < 1 or int(degree) != degree:
        return base ** degree
    # repeated in-place products: several times faster than the general power on the (N, N) matrix
    out = base.copy()
    for _ in range(int(degree) - 1):
        out *= base
    return out


def mmd2_unbiased(x: np.ndarray, y: np.ndarray, degree: int = KPD_KERNEL_DEGREE) -> float:
    """Unbiased estimate of the squared MMD with the polynomial kernel: the means of k over distinct pairs
    within x and within y (diagonals left out) minus twice the mean of k between x and y. Can be < 0."""
    m, n = len(x), len(y)
    if m < 2 or n < 2:
        raise ValueError(f"the unbiased MMD needs 2 or more rows in each sample, not {m} and {n}")
    kxx, kyy = polynomial_kernel(x, x, degree), polynomial_kernel(y, y, degree)
    within_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * polynomial_kernel(x, y, degree).mean())


def kpd(x_ref: np.ndarray, x_gen: np.ndarray, rng: np.random.Generator, num_batches: int = 10,
        batch_size: int = 5_000, normalise: bool = True, degree: int = KPD_KERNEL_DEGREE) -> dict:
    """Kernel physics distance of two feature samples: the median of the unbiased squared MMD over
    ``num_batches`` batches of ``batch_size`` rows drawn with replacement from each sample.

    x_ref (N_ref, D), x_gen (N_gen, D). Returns {"value", "error", "batch_size", "per_batch"}.
    """
    x_ref, x_gen = _check_features(x_ref, x_gen)
    if normalise:
        x_ref, x_gen = max_abs_normalise(x_ref, x_gen)
    per_batch = []
    for _ in range(num_batches):
        idx_ref = rng.choice(len(x_ref), size=batch_size)
        idx_gen = rng.choice(len(x_gen), size=batch_size)
        per_batch.append(mmd2_unbiased(x_ref[idx_ref], x_gen[idx_gen], degree))
    lo, hi = np.percentile(per_batch, [16.275, 83.725])
    return {"value": float(np.median(per_batch)), "error": float(hi - lo) / 2.0, "batch_size": int(batch_size),
            "per_batch": per_batch}


def _check_features(x_ref, x_gen) -> tuple[np.ndarray, np.ndarray]:
    x_ref, x_gen = np.asarray(x_ref, np.float64), np.asarray(x_gen, np.float64)
    if x_ref.ndim != 2 or x_gen.ndim != 2 or x_ref.shape[1] != x_gen.shape[1]:
        raise ValueError(f"features must be (N, D) with the same D, not {x_ref.shape} and {x_gen.shape}")
    if not (np.isfinite(x_ref).all() and np.isfinite(x_gen).all()):
        raise ValueError("features hold NaN or inf: replace them first (the CaloChallenge uses nan_to_num)")
    return x_ref, x_gen


def standardise_by_reference(x_ref: np.ndarray, x_gen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both samples shifted and scaled, per feature, by the reference's mean and std (as the CaloChallenge
    prepares its high-level features); constant features keep scale 1, and NaN / inf become finite
    (numpy's nan_to_num) so that one degenerate shower cannot turn the distances into NaN."""
    x_ref = np.nan_to_num(np.asarray(x_ref, np.float64))
    x_gen = np.nan_to_num(np.asarray(x_gen, np.float64))
    mean, std = x_ref.mean(axis=0), x_ref.std(axis=0)
    std[std == 0] = 1.0
    return (x_ref - mean) / std, (x_gen - mean) / std


def fpd_kpd_for_samples(x_ref: np.ndarray, x_gen: np.ndarray, rng: np.random.Generator,
                        max_samples: int = 50_000, kpd_batch_size: int = 5_000) -> dict:
    """FPD and KPD with jetnet's batch settings scaled down to samples smaller than they assume.

    The FPD batch sizes run from 0.4 of the largest to the largest, jetnet's 20,000 / 50,000 ratio, the
    largest being ``max_samples`` or the smaller sample's size; KPD batches hold ``kpd_batch_size`` rows or
    the smaller sample's size. Resampling beyond a sample's size would only repeat its showers.
    Returns {"fpd": fpd(...), "kpd": kpd(...)}.
    """
    n = min(len(x_ref), len(x_gen))
    largest = min(max_samples, n)
    smallest = max(2, int(round(0.4 * largest)))
    return {"fpd": fpd(x_ref, x_gen, rng, min_samples=smallest, max_samples=largest),
            "kpd": kpd(x_ref, x_gen, rng, batch_size=min(kpd_batch_size, n))}
