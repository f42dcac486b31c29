"""Batch normalisation over every axis but the last (Keras' default axis=-1), with running statistics.

Keras conventions: running = momentum * running + (1 - momentum) * batch, momentum 0.99, epsilon 1e-3; the
batch variance is the biased one. gamma, beta, and the running statistics have shape (C,).

Synchronised statistics (data-parallel training, ``statistics_reducer`` set): the batch is every rank's slice
together; the forward sums x and x^2 per channel (float64) over all ranks with one allreduce, the backward
sums dy and dy * x_hat the same way, so each rank's dx is its rows of the global batch's dx (times the number of
ranks, as each rank's loss is its own slice's mean and the ranks' gradients are averaged afterwards).
"""

from __future__ import annotations

import numpy as np

from calosim.layers.base import Layer


class BatchNorm(Layer):
    def __init__(self, momentum: float = 0.99, epsilon: float = 1e-3, name: str | None = None):
        super().__init__(name or "batchnorm")
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.update_statistics = True
        # None: statistics of this process's batch. Data-parallel training with synchronised BatchNorm sets an
        # object with ``size`` (ranks) and ``sum_over_ranks(array)`` (calosim.distributed.mpi.DataParallel).
        self.statistics_reducer = None

    def _build(self, input_shape, rng):
        channels = input_shape[-1]
        self.add_param("gamma", (channels,), 1.0, rng)
        self.add_param("beta", (channels,), "zeros", rng)
        self.state["moving_mean"] = self.backend.asarray(np.zeros(channels))
        self.state["moving_variance"] = self.backend.asarray(np.ones(channels))
        return input_shape

    def forward(self, x, training: bool = True):
        self.check_input(x)
        gamma, beta = self.params["gamma"].value, self.params["beta"].value
        self._training = training
        if training:
            if self.statistics_reducer is not None:
                y, mean, var, x_hat, inv_std = self._synced_forward(x, gamma, beta)
            else:
                y, mean, var, x_hat, inv_std = self.backend.batchnorm_forward(x, gamma, beta, self.epsilon)
            self._x_hat, self._inv_std = x_hat, inv_std  # retained; x and y are not
            if self.update_statistics:
                m = self.momentum
                self.state["moving_mean"] = m * self.state["moving_mean"] + (1.0 - m) * mean
                self.state["moving_variance"] = m * self.state["moving_variance"] + (1.0 - m) * var
            return y
        xp = self.backend.xp
        inv_std = 1.0 / xp.sqrt(self.state["moving_variance"] + self.epsilon)
        self._x_hat = (x - self.state["moving_mean"]) * inv_std
        self._inv_std = inv_std
        return gamma * self._x_hat + beta

    def backward(self, dy):
        gamma = self.params["gamma"]
        axes = tuple(range(dy.ndim - 1))
        if self._training and self.statistics_reducer is not None:
            dx, dgamma, dbeta = self._synced_backward(dy, gamma.value)
        elif self._training:
            dx, dgamma, dbeta = self.backend.batchnorm_backward(dy, self._x_hat, self._inv_std, gamma.value)
        else:
            dx = dy * (gamma.value * self._inv_std)
            dgamma, dbeta = (dy * self._x_hat).sum(axis=axes), dy.sum(axis=axes)
        if self.param_grads:
            gamma.grad = dgamma
            self.params["beta"].grad = dbeta
        return dx

    def _global_count(self, x) -> int:
        return x.size // x.shape[-1] * self.statistics_reducer.size  # every rank holds an equal slice

    def _synced_forward(self, x, gamma, beta):
        """(y, mean, var, x_hat, inv_std) with the statistics of the global batch (one allreduce)."""
        xp, c = self.backend.xp, x.shape[-1]
        axes = tuple(range(x.ndim - 1))
        x64 = x.astype(xp.float64)
        sums = self.statistics_reducer.sum_over_ranks(xp.concatenate([x64.sum(axis=axes), (x64 * x64).sum(axis=axes)]))
        n = self._global_count(x)
        mean = sums[:c] / n
        var = xp.maximum(sums[c:] / n - mean * mean, 0.0)  # float64 sums: no cancellation at float32 scale
        inv_std = (1.0 / xp.sqrt(var + self.epsilon)).astype(x.dtype)
        x_hat = (x - mean.astype(x.dtype)) * inv_std
        return gamma * x_hat + beta, mean.astype(x.dtype), var.astype(x.dtype), x_hat, inv_std

    def _synced_backward(self, dy, gamma):
        """(dx, dgamma, dbeta): dgamma and dbeta of this rank's rows (averaged with the other gradients later);
        dx from the global sums of dy and dy * x_hat (one allreduce)."""
        xp, c = self.backend.xp, dy.shape[-1]
        axes = tuple(range(dy.ndim - 1))
        dbeta, dgamma = dy.sum(axis=axes), (dy * self._x_hat).sum(axis=axes)
        sums = self.statistics_reducer.sum_over_ranks(xp.concatenate([dbeta, dgamma]).astype(xp.float64))
        n = self._global_count(dy)
        mean_dy, mean_dy_xhat = (sums[:c] / n).astype(dy.dtype), (sums[c:] / n).astype(dy.dtype)
        dx = (gamma * self._inv_std) * (dy - mean_dy - self._x_hat * mean_dy_xhat)
        return dx, dgamma, dbeta

    def folded_scale_shift(self):
        """Inference-mode (scale, shift) with y = scale * x + shift, for folding into the previous layer."""
        xp = self.backend.xp
        scale = self.params["gamma"].value / xp.sqrt(self.state["moving_variance"] + self.epsilon)
        return scale, self.params["beta"].value - scale * self.state["moving_mean"]
