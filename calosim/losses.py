"""Losses with their gradients. Each returns ``(loss, dloss/dinput)``; the loss is a Python float, a batch mean."""

from __future__ import annotations


def bce_with_logits(logits, targets, xp):
    """Binary cross-entropy of sigmoid(logits) against targets in [0, 1], computed stably from the logits.

    loss = mean(max(z, 0) - z t + log(1 + exp(-|z|))); d/dz = (sigmoid(z) - t) / n.
    """
    z, t = logits, targets
    loss = xp.maximum(z, 0) - z * t + xp.log1p(xp.exp(-xp.abs(z)))
    e = xp.exp(-xp.abs(z))
    sigmoid = xp.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return float(loss.mean()), ((sigmoid - t) / z.size).astype(z.dtype)


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


def soft_sparsity_loss(xs, targets, tau: float, xp):
    """sum_l |mean(sigmoid(x_l / tau)) - s_l|: a differentiable occupancy match of images x_l (any shapes, the
    mean over all their entries) to target fractions of non-zero cells s_l; returns (loss, [d/dx_l]).

    d/dx_l = sign(m_l - s_l) sigmoid(x_l / tau) (1 - sigmoid(x_l / tau)) / (tau size(x_l)), m_l the soft mean.
    """
    loss, grads = 0.0, []
    for x, s in zip(xs, targets):
        u = x / tau
        e = xp.exp(-xp.abs(u))
        sig = xp.where(u >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        diff = float(sig.mean()) - float(s)
        loss += abs(diff)
        sign = (diff > 0) - (diff < 0)
        grads.append((sign * sig * (1.0 - sig) / (tau * x.size)).astype(x.dtype))
    return loss, grads
