"""The backend interface: a small set of named primitives every backend provides.

Layout conventions (shared by every primitive):

- images are channels-last, ``(N, H, W, C)`` (Keras' convention, which CaloGAN used);
- a locally connected 2D layer (LC2D) with kernel ``(K_h, K_w)`` and stride ``(S_h, S_w)`` on an input
  ``(N, H, W, C_in)`` has ``H_out = (H - K_h) // S_h + 1`` (likewise ``W_out``), weights
  ``w`` of shape ``(H_out, W_out, K_h*K_w*C_in, C_out)`` whose patch axis is ordered ``(k_h, k_w, c_in)``,
  and an optional bias ``b`` of shape ``(H_out, W_out, C_out)``;
- a 'valid' convolution has weights ``(K_h, K_w, C_in, C_out)`` and bias ``(C_out,)``; padding is a
  separate primitive (``pad2d``) so that Keras' asymmetric 'same' padding stays explicit;
- batch normalisation normalises over every axis but the last (the channels).

Outputs are allocated by the backend and returned; inputs are never modified unless the name says so
(``adam_update_``).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import Any

BACKEND_NAMES = ("numpy", "numba", "cupy")

_BACKEND_CLASSES = {
    "numpy": ("calosim.backends.numpy_backend", "NumpyBackend"),
    "numba": ("calosim.backends.numba_backend", "NumbaBackend"),
    "cupy": ("calosim.backends.cupy_backend", "CupyBackend"),
}

_INSTANCES: dict[tuple[str, str], Backend] = {}


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run here; the message says why and how to fix it."""


class Backend(ABC):
    """Primitives of calosim's layers. Subclasses own the array module ``xp``."""

    name: str = "abstract"
    xp: Any = None

    def __init__(self, dtype: str = "float32"):
        if dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        self.dtype = dtype

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.dtype}>"

    @classmethod
    def check_available(cls) -> None:
        """Raise :class:`BackendUnavailable` saying why this backend cannot run here and how to fix it."""

    # ----------------------------------------------------------------- arrays
    @abstractmethod
    def asarray(self, a, dtype=None):
        """Array ``a`` on this backend, in ``dtype`` (default: the backend's dtype)."""

    @abstractmethod
    def to_numpy(self, a):
        """A NumPy copy (or view) of a backend array."""

    def synchronize(self) -> None:
        """Wait until queued work is done (a no-op on the CPU)."""

    def zeros(self, shape, dtype=None):
        return self.xp.zeros(shape, dtype=dtype or self.dtype)

    # ----------------------------------------------------------------- dense
    @abstractmethod
    def matmul(self, a, b, out=None):
        """``a @ b`` for 2D or batched 3D arrays (BLAS), into ``out`` when given (an array of the product's
        shape and dtype)."""

    # ----------------------------------------------------------------- locally connected 2D
    @abstractmethod
    def lc2d_forward(self, x, w, b, kernel, stride):
        """y[n, i, j, o] = sum_p patch(x)[n, i, j, p] * w[i, j, p, o] + b[i, j, o]; y (N, H_out, W_out, C_out)."""

    @abstractmethod
    def lc2d_backward_data(self, dy, w, x_shape, kernel, stride):
        """dL/dx (N, H, W, C_in) from dy (N, H_out, W_out, C_out)."""

    @abstractmethod
    def lc2d_backward_weight(self, x, dy, kernel, stride):
        """dL/dw (H_out, W_out, K_h*K_w*C_in, C_out); the bias gradient is ``dy.sum(0)``."""

    # ----------------------------------------------------------------- convolution ('valid')
    @abstractmethod
    def conv2d_forward(self, x, w, b, stride):
        """'valid' cross-correlation: y (N, H_out, W_out, C_out) from x (N, H, W, C_in), w (K_h, K_w, C_in, C_out)."""

    @abstractmethod
    def conv2d_backward_data(self, dy, w, x_shape, stride):
        """dL/dx (N, H, W, C_in)."""

    @abstractmethod
    def conv2d_backward_weight(self, x, dy, kernel, stride):
        """dL/dw (K_h, K_w, C_in, C_out); the bias gradient is ``dy.sum((0, 1, 2))``."""

    # ----------------------------------------------------------------- shape ops
    @abstractmethod
    def pad2d(self, x, pad):
        """Zero padding of axes 1, 2: ``pad = ((top, bottom), (left, right))``."""

    @abstractmethod
    def upsample2d(self, x, factor):
        """Nearest-neighbour repeat of axes 1, 2 by ``factor = (f_h, f_w)``."""

    @abstractmethod
    def avgpool2d(self, x, pool):
        """Non-overlapping average pooling of axes 1, 2 with window and stride ``pool`` (floor mode)."""

    @abstractmethod
    def pad2d_backward(self, dy, pad):
        """Adjoint of :meth:`pad2d`: the interior of dy."""

    @abstractmethod
    def upsample2d_backward(self, dy, factor):
        """Adjoint of :meth:`upsample2d`: sums over each ``factor`` block."""

    @abstractmethod
    def avgpool2d_backward(self, dy, pool, x_shape):
        """Adjoint of :meth:`avgpool2d`: dy / (p_h p_w) spread over each window; cells past the last window get 0."""

    # ----------------------------------------------------------------- batch normalisation
    @abstractmethod
    def batchnorm_forward(self, x, gamma, beta, eps):
        """Training mode: returns ``(y, mean, var, x_hat, inv_std)`` with statistics over all axes but the last."""

    @abstractmethod
    def batchnorm_backward(self, dy, x_hat, inv_std, gamma):
        """Returns ``(dx, dgamma, dbeta)`` for the training-mode forward."""

    # ----------------------------------------------------------------- activations
    @abstractmethod
    def leaky_relu(self, x, alpha):
        """max(x, 0) + alpha * min(x, 0); alpha = 0 is ReLU."""

    @abstractmethod
    def leaky_relu_backward(self, x, dy, alpha):
        """dL/dx of :meth:`leaky_relu` (the input ``x`` is retained, not the output)."""

    @abstractmethod
    def channel_softmax(self, x):
        """Softmax over the last axis."""

    @abstractmethod
    def channel_softmax_backward(self, y, dy):
        """dL/dx of :meth:`channel_softmax` from its output ``y`` (retained)."""

    # ----------------------------------------------------------------- minibatch discrimination
    @abstractmethod
    def mbd_forward(self, m):
        """o[i, k] = sum_j exp(-sum_d |m[i, k, d] - m[j, k, d]|) for m (N, K, D); o (N, K)."""

    @abstractmethod
    def mbd_backward(self, m, do):
        """dL/dm (N, K, D) from do (N, K)."""

    # ----------------------------------------------------------------- optimiser
    @abstractmethod
    def adam_update_(self, param, grad, m, v, lr_t, beta1, beta2, eps):
        """In place: m, v moments and ``param -= lr_t * m / (sqrt(v) + eps)`` (lr_t bias-corrected)."""


def _backend_class(name: str):
    if name not in _BACKEND_CLASSES:
        raise BackendUnavailable(f"unknown backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}")
    module_name, class_name = _BACKEND_CLASSES[name]
    module = importlib.import_module(module_name)
    return getattr(module, class_name)


def get_backend(name: str = "numpy", dtype: str = "float32") -> Backend:
    """The backend called ``name`` computing in ``dtype``; raises :class:`BackendUnavailable` with a fix."""
    key = (name, dtype)
    if key not in _INSTANCES:
        cls = _backend_class(name)
        cls.check_available()
        _INSTANCES[key] = cls(dtype=dtype)
    return _INSTANCES[key]


def backend_status() -> dict[str, str]:
    """``{name: "available" | reason it is not}`` for every backend."""
    status = {}
    for name in BACKEND_NAMES:
        try:
            _backend_class(name).check_available()
            status[name] = "available"
        except (BackendUnavailable, ImportError) as exc:
            status[name] = str(exc)
    return status
