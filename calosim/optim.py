"""Adam with Keras' bias correction, and a state that saves and restores exactly."""

from __future__ import annotations

import math

import numpy as np

from calosim.layers.base import Parameter


class Adam:
    """lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t); p -= lr_t * m / (sqrt(v) + eps) (Keras' form).

    gradient_reducer: None, or a function of the list of gradients (parameter order) returning the gradients to
    apply; data-parallel training sets it to the average over the ranks (calosim.distributed.mpi), so every
    trainer's updates go through one allreduce per step without knowing it."""

    def __init__(self, params: list[Parameter], lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-7, backend=None):
        if backend is None:
            raise ValueError("Adam needs the backend its parameters live on")
        self.params = list(params)
        self.lr, self.beta1, self.beta2, self.eps = float(lr), float(beta1), float(beta2), float(eps)
        self.backend = backend
        self.t = 0
        self.gradient_reducer = None
        self.m = [backend.xp.zeros_like(p.value) for p in self.params]
        self.v = [backend.xp.zeros_like(p.value) for p in self.params]

    def step(self) -> None:
        """One update from the gradients of the last backward pass."""
        self.t += 1
        lr_t = self.lr * math.sqrt(1.0 - self.beta2**self.t) / (1.0 - self.beta1**self.t)
        for p in self.params:
            if p.grad is None:
                raise RuntimeError(f"parameter {p.name} has no gradient: was backward called?")
        grads = [p.grad for p in self.params]
        if self.gradient_reducer is not None:
            grads = self.gradient_reducer(grads)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            self.backend.adam_update_(p.value, g, m, v, lr_t, self.beta1, self.beta2, self.eps)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything needed to continue exactly: the step count and both moments (NumPy arrays)."""
        state = {"t": np.array(self.t)}
        for p, m, v in zip(self.params, self.m, self.v):
            state[f"m/{p.name}"] = self.backend.to_numpy(m).copy()
            state[f"v/{p.name}"] = self.backend.to_numpy(v).copy()
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.t = int(state["t"])
        for i, p in enumerate(self.params):
            for moments, key in ((self.m, f"m/{p.name}"), (self.v, f"v/{p.name}")):
                if key not in state:
                    raise KeyError(f"optimiser state has no entry {key!r}")
                if tuple(state[key].shape) != tuple(p.value.shape):
                    raise ValueError(f"optimiser state {key!r} has shape {state[key].shape}, expected {p.value.shape}")
                moments[i] = self.backend.asarray(state[key], dtype=p.value.dtype)
