"""Losses with their gradients. Each returns ``(loss, dloss/dinput)``; the loss is a Python float, a batch mean."""

from __future__ import annotations

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
