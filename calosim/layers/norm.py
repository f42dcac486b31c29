"""Batch normalisation over every axis but the last (Keras' default axis=-1), with running statistics.

Keras conventions: running = momentum * running + (1 - momentum) * batch, momentum 0.99, epsilon 1e-3; the
batch variance is the biased one. gamma, beta, and the running statistics have shape (C,).
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
        if self._training:
            dx, dgamma, dbeta = self.backend.batchnorm_backward(dy, self._x_hat, self._inv_std, gamma.value)
        else:
            dx = dy * (gamma.value * self._inv_std)
            dgamma, dbeta = (dy * self._x_hat).sum(axis=axes), dy.sum(axis=axes)
        if self.param_grads:
            gamma.grad = dgamma
            self.params["beta"].grad = dbeta
        return dx

    def folded_scale_shift(self):
        """Inference-mode (scale, shift) with y = scale * x + shift, for folding into the previous layer."""
        xp = self.backend.xp
        scale = self.params["gamma"].value / xp.sqrt(self.state["moving_variance"] + self.epsilon)
        return scale, self.params["beta"].value - scale * self.state["moving_mean"]
