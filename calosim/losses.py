"""Losses with their gradients. Each returns ``(loss, dloss/dinput)``; the loss is a Python float, a batch mean."""

from __future__ import annotations

import numpy as np

from calosim.layers.activations import sigmoid_of_exp


def bce_elementwise(z, t, xp):
    """(max(z, 0) - z t + log(1 + exp(-|z|)), sigmoid(z)) per element: the binary cross-entropy of sigmoid(z)
    against targets t in [0, 1], computed stably from the logits z, and the sigmoid its gradient needs."""
    e = xp.exp(-xp.abs(z))
    return xp.maximum(z, 0) - z * t + xp.log1p(e), sigmoid_of_exp(z, e, xp)


def bce_with_logits(logits, targets, xp):
    """Binary cross-entropy of sigmoid(logits) against targets in [0, 1], as a mean over every element.

    loss = mean(max(z, 0) - z t + log(1 + exp(-|z|))); d/dz = (sigmoid(z) - t) / n.
    """
    loss, s = bce_elementwise(logits, targets, xp)
    return float(loss.mean()), ((s - targets) / logits.size).astype(logits.dtype)


def mean_absolute_error(prediction, target, xp):
    """mean |prediction - target|; d/dprediction = sign(prediction - target) / n."""
    diff = prediction - target
    return float(xp.abs(diff).mean()), (xp.sign(diff) / diff.size).astype(prediction.dtype)


def wasserstein_critic_loss(critic_real, critic_fake, xp):
    """Critic loss mean(D(fake)) - mean(D(real)); returns (loss, d/dD(real), d/dD(fake))."""
    loss = float(critic_fake.mean() - critic_real.mean())
    d_real = xp.full(critic_real.shape, -1.0 / critic_real.size, dtype=critic_real.dtype)
    d_fake = xp.full(critic_fake.shape, 1.0 / critic_fake.size, dtype=critic_fake.dtype)
    return loss, d_real, d_fake


def wasserstein_generator_loss(critic_fake, xp):
    """Generator loss -mean(D(fake)); returns (loss, d/dD(fake))."""
    return float(-critic_fake.mean()), xp.full(critic_fake.shape, -1.0 / critic_fake.size, dtype=critic_fake.dtype)


def occupancy_fraction_loss(xs, targets, tau: float, xp):
    """Per-shower occupancy match: sum_l mean_i (h_il - t_il)^2, h_il the fraction of cells of shower i in image
    x_l that are > 0 (the observable "sparsity"), t_il its target; returns (loss, [d/dx_l]).

    xs: images (N, ...) before the final ReLU; targets: (N, L) fractions in [0, 1]. The count has no
    gradient, so the backward is straight-through: h_il is replaced by its smooth surrogate, the mean of
    sigmoid(x / tau) over the shower's cells, with (h_il - t_il) held fixed:
        d/dx_ilc = 2 (h_il - t_il) / N * sigmoid'(x_ilc / tau) / (tau n_l),  n_l cells per shower.
    Only cells within a few tau of zero move, in the direction that brings the count to the target.
    """
    loss, grads = 0.0, []
    for index, x in enumerate(xs):
        n = x.shape[0]
        flat = x.reshape(n, -1)
        diff = (flat > 0).mean(axis=1) - targets[:, index]  # (N,)
        loss += float((diff * diff).mean())
        u = flat / tau
        e = xp.exp(-xp.abs(u))
        slope = e / ((1.0 + e) * (1.0 + e))  # sigmoid'(u), symmetric in u
        grad = (2.0 / (n * tau * flat.shape[1])) * diff.reshape(n, 1) * slope
        grads.append(grad.reshape(x.shape).astype(x.dtype))
    return loss, grads


LOG_SQRT_2PI = 0.9189385332046727  # log(2 pi) / 2
LOG_SIGMA_RANGE = (-7.0, 3.0)  # the log widths a mixture may use (gradient zero outside)


ERF_P = 0.3275911  # Abramowitz and Stegun 7.1.26
ERF_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
QUANTILE_STEPS = 40  # bisection steps of gaussian_mixture_quantile: 2^-40 of the bracket


def normal_cdf(x, xp):
    """Phi(x) of the standard normal by Abramowitz and Stegun 7.1.26 (absolute error < 1e-7), in elementary
    operations, so that numpy, cupy and an ONNX graph (calosim.export.graph.Graph) compute the same formula."""
    a = xp.abs(x) * 0.7071067811865476
    t = 1.0 / (1.0 + ERF_P * a)
    poly = ERF_A[4]
    for coefficient in ERF_A[3::-1]:
        poly = coefficient + t * poly
    tail = 0.5 * (t * poly) * xp.exp(-(a * a))  # = Phi(-|x|)
    return xp.where(x >= 0.0, 1.0 - tail, tail)


def gaussian_mixture_quantile(out, z, low: float, high: float, xp, log_sigma_range=LOG_SIGMA_RANGE):
    """The Phi(z)-quantiles t (N, 1) of the mixtures ``out`` (N, 3K) (as gaussian_mixture_nll reads them) at
    normal scores z (N, 1), by QUANTILE_STEPS bisections of the bracket [low, high] (a quantile outside it gives
    the bound); ``xp`` numpy, cupy or an ONNX graph. Above the median the bisection compares the mixture's upper
    tail with Phi(-z) rather than its CDF with 1 - Phi(-z): both tails keep their relative precision, which in
    float32 (the ONNX graph) decides t to 1e-4 of a width where the density is low."""
    k = out.shape[-1] // 3  # a graph value's shape is per sample: (3K,)
    a, mu = out[:, :k], out[:, k:2 * k]
    width = xp.exp(xp.minimum(xp.maximum(out[:, 2 * k:], log_sigma_range[0]), log_sigma_range[1]))
    pi = xp.exp(a - a.max(axis=1, keepdims=True))
    pi = pi / pi.sum(axis=1, keepdims=True)
    upper = z >= 0.0
    sign = xp.where(upper, -1.0, 1.0)  # the tail compared: the CDF below the median, the survival above it
    tail = normal_cdf(-xp.abs(z), xp)
    lo, hi = z * 0.0 + low, z * 0.0 + high
    for _ in range(QUANTILE_STEPS):
        mid = 0.5 * (lo + hi)
        mass = (pi * normal_cdf(sign * (mid - mu) / width, xp)).sum(axis=1, keepdims=True)
        above = sign * (tail - mass) > 0.0  # the quantile lies above mid (CDF below, or survival above, the tail)
        lo, hi = xp.where(above, mid, lo), xp.where(above, hi, mid)
    return 0.5 * (lo + hi)


def gaussian_mixture_nll(out, t, xp, log_sigma_range=LOG_SIGMA_RANGE):
    """Negative log-likelihood of 1-D targets t (N,) under Gaussian mixtures, a batch mean.

    out (N, 3K) = [a | mu | s]: component logits a, means mu and log widths s (clipped to log_sigma_range)
    of K components per sample. With pi = softmax(a), z_k = (t - mu_k) / sigma_k and the responsibilities
    r_k = pi_k N(t; mu_k, sigma_k) / p(t):
        loss = -mean log p(t),   d/da_k = (pi_k - r_k) / N,   d/dmu_k = -r_k z_k / (sigma_k N),
        d/ds_k = -r_k (z_k^2 - 1) / N  (0 where s is clipped).
    Returns (loss, dloss/dout (N, 3K))."""
    k = out.shape[1] // 3
    a, mu, s_raw = out[:, :k], out[:, k:2 * k], out[:, 2 * k:]
    lo, hi = log_sigma_range
    s = xp.clip(s_raw, lo, hi)
    a_max = a.max(axis=1, keepdims=True)
    log_pi = a - a_max - xp.log(xp.exp(a - a_max).sum(axis=1, keepdims=True))
    inv_sigma = xp.exp(-s)
    z = (t.reshape(-1, 1) - mu) * inv_sigma
    log_joint = log_pi - 0.5 * z * z - s - LOG_SQRT_2PI
    j_max = log_joint.max(axis=1, keepdims=True)
    log_p = j_max + xp.log(xp.exp(log_joint - j_max).sum(axis=1, keepdims=True))
    r = xp.exp(log_joint - log_p)
    n = out.shape[0]
    d_a = (xp.exp(log_pi) - r) / n
    d_mu = -r * z * inv_sigma / n
    d_s = -r * (z * z - 1.0) / n * ((s_raw > lo) & (s_raw < hi))
    return float(-log_p.mean()), xp.concatenate([d_a, d_mu, d_s], axis=1).astype(out.dtype)


def sample_gaussian_mixture(out, u, eps, xp, log_sigma_range=LOG_SIGMA_RANGE):
    """Draws t (N,) from the mixtures ``out`` (N, 3K) as gaussian_mixture_nll reads them, given uniforms u (N,)
    (which component: the first whose cumulative weight exceeds u) and standard normals eps (N,)."""
    k = out.shape[1] // 3
    a, mu, s = out[:, :k], out[:, k:2 * k], xp.clip(out[:, 2 * k:], *log_sigma_range)
    pi = xp.exp(a - a.max(axis=1, keepdims=True))
    cumulative = xp.cumsum(pi / pi.sum(axis=1, keepdims=True), axis=1)
    component = xp.minimum((cumulative < u.reshape(-1, 1)).sum(axis=1), k - 1)
    rows = xp.arange(out.shape[0])
    return mu[rows, component] + xp.exp(s[rows, component]) * eps


def export_sample_gaussian_mixture(out, u, eps, graph, log_sigma_range=LOG_SIGMA_RANGE):
    """:func:`sample_gaussian_mixture` on an ONNX graph (calosim.export.graph.Graph): the same formulas, the
    component's index a count of cumulative weights below u as there, and the choice of mu and s a one-hot
    sum instead of the fancy index (exact: the other K - 1 terms are zeros). out (N, 3K), u and eps (N, 1)."""
    k = out.size // 3  # a graph value's shape is per sample: (3K,)
    a, mu = out[:, :k], out[:, k:2 * k]
    s = graph.minimum(graph.maximum(out[:, 2 * k:], log_sigma_range[0]), log_sigma_range[1])
    pi = graph.exp(a - a.max(axis=1, keepdims=True))
    cumulative = graph.cumsum(pi / pi.sum(axis=1, keepdims=True), axis=1)
    component = graph.minimum((cumulative < u).astype(np.float32).sum(axis=1, keepdims=True), k - 1)
    chosen = graph.equal(component, np.arange(k, dtype=np.float32))
    mu_chosen = graph.where(chosen, mu, 0.0).sum(axis=1, keepdims=True)
    s_chosen = graph.where(chosen, s, 0.0).sum(axis=1, keepdims=True)
    return mu_chosen + graph.exp(s_chosen) * eps
