"""Gradient checks as Chainer does them: float64 central differences along seeded random directions.

For a layer y = f(x, theta) and a fixed random upstream gradient g, the scalar L = sum(g * y) has
directional derivative <dL/dx, v_x> + <dL/dtheta, v_theta>; it is estimated by
(L(+h v) - L(-h v)) / (2 h) (two forward passes per direction) and compared with the hand-written backward
projected on the same direction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class GradcheckResult:
    name: str
    max_rel_error: float
    numeric: list[float] = field(default_factory=list)
    analytic: list[float] = field(default_factory=list)

    def passed(self, tol: float = 1e-6) -> bool:
        return bool(np.isfinite(self.max_rel_error) and self.max_rel_error < tol)

    def describe(self) -> str:
        pairs = ", ".join(f"{n:.12g} vs {a:.12g}" for n, a in zip(self.numeric, self.analytic))
        return f"{self.name}: max relative error {self.max_rel_error:.3g} (numeric vs analytic: {pairs})"


def relative_error(numeric: float, analytic: float) -> float:
    scale = max(abs(numeric), abs(analytic), 1e-12)
    return abs(numeric - analytic) / scale


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _restore_rngs(layer, states):
    for sub, state in zip(layer.walk(), states):
        if state is not None:
            sub.rng.bit_generator.state = state


def check_layer(layer, inputs, backend, rng: np.random.Generator, n_directions: int = 3, h: float = 1e-6,
                training: bool = True, name: str | None = None) -> GradcheckResult:
    """Check ``layer.backward`` (already built on ``backend``) at ``inputs`` (NumPy arrays, one or a list)."""
    multi = isinstance(inputs, (list, tuple))
    xs = [backend.asarray(x) for x in _as_list(inputs)]
    params = layer.parameters()
    rng_states = [getattr(sub, "rng", None) and sub.rng.bit_generator.state for sub in layer.walk()]

    def run(arrays):
        _restore_rngs(layer, rng_states)
        return layer.forward(arrays if multi else arrays[0], training)

    y = run(xs)
    g = backend.asarray(rng.standard_normal(y.shape))
    dxs = _as_list(layer.backward(g))
    dps = [p.grad for p in params]

    def loss(arrays):
        return float((run(arrays) * g).sum())

    return check_directions(loss, xs, params, dxs, dps, backend, rng, n_directions, h, name or layer.name)


def check_directions(loss, xs, params, dxs, dps, backend, rng: np.random.Generator, n_directions: int = 3,
                     h: float = 1e-6, name: str = "function") -> GradcheckResult:
    """Compare the analytic gradients ``dxs`` (of the inputs ``xs``) and ``dps`` (of ``params``) of the scalar
    ``loss(xs)`` with central differences along ``n_directions`` random directions in (xs, params) jointly.
    The parameters are perturbed in place and restored."""
    result = GradcheckResult(name, 0.0)
    for _ in range(n_directions):
        v_x = [backend.asarray(rng.standard_normal(x.shape)) for x in xs]
        v_p = [backend.asarray(rng.standard_normal(p.value.shape)) for p in params]
        originals = [p.value.copy() for p in params]
        values = []
        for sign in (1.0, -1.0):
            for p, orig, v in zip(params, originals, v_p):
                p.value[...] = orig + sign * h * v
            values.append(loss([x + sign * h * v for x, v in zip(xs, v_x)]))
        for p, orig in zip(params, originals):
            p.value[...] = orig
        numeric = (values[0] - values[1]) / (2.0 * h)
        analytic = sum(float((dx * v).sum()) for dx, v in zip(dxs, v_x))
        analytic += sum(float((dp * v).sum()) for dp, v in zip(dps, v_p))
        result.numeric.append(numeric)
        result.analytic.append(analytic)
        result.max_rel_error = max(result.max_rel_error, relative_error(numeric, analytic))
    return result


def check_function(fn, x: np.ndarray, rng: np.random.Generator, n_directions: int = 3, h: float = 1e-6,
                   name: str = "function") -> GradcheckResult:
    """Check a loss ``fn(x) -> (value, dvalue/dx)`` on a NumPy float64 array."""
    _, grad = fn(x)
    result = GradcheckResult(name, 0.0)
    for _ in range(n_directions):
        v = rng.standard_normal(x.shape)
        numeric = (fn(x + h * v)[0] - fn(x - h * v)[0]) / (2.0 * h)
        analytic = float((np.asarray(grad) * v).sum())
        result.numeric.append(numeric)
        result.analytic.append(analytic)
        result.max_rel_error = max(result.max_rel_error, relative_error(numeric, analytic))
    return result
