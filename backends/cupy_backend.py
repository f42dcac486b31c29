"""The CuPy backend: calosim's primitives on an NVIDIA GPU.

- matrix products go to cuBLAS through ``cupy.matmul``;
- the layer primitives are hand-written CUDA kernels, ``kernels/cuda/*.cu`` (one RawModule per file, compiled
  lazily by :mod:`calosim.kernels.cuda_loader`), launched with C-contiguous arrays and ``np.int32`` extents
  (a RawKernel sees raw pointers and ignores strides); every kernel sums in a fixed order (gathers and
  two-pass column sums, no atomics), so results are deterministic;
- element-wise activations and the Adam step are ``cupy.ElementwiseKernel`` s, the NumPy maths beside them.

CuPy is imported lazily: this module imports fine without it, and :meth:`CupyBackend.check_available` says
in one line what is missing. Kernels exist for float32 and float64 (float64 for the gradient checks).
Everything else (shapes, bias handling, return values) follows :class:`NumpyBackend`, the specification.
"""

from __future__ import annotations

import functools

import numpy as np

from calosim.backends.base import BackendUnavailable
from calosim.backends.numpy_backend import NumpyBackend, conv_output_size
from calosim.kernels import cuda_loader

INSTALL_HINT = (
    "install the cuda extra: pip install 'calosim[cuda]' "
    "(choose cupy-cuda12x or cupy-cuda13x to match your driver, see README)"
)

_THREADS_PER_BLOCK = 256
_MAX_BLOCKS = 65535  # grid-stride loops cover the rest
_PARTIAL_SUM_THREADS = 1 << 16  # two-pass column sums aim at about this many threads in their first pass
_MAX_PARTS = 1024
_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}

# Element-wise kernels: (in_params, out_params, operation), the NumPy reference beside each.
_ELEMENTWISE = {
    # np.where(x > 0, x, x * alpha)
    "leaky_relu": ("T x, T alpha", "T y", "y = x > (T)0 ? x : x * alpha"),
    # np.where(x > 0, dy, dy * alpha)
    "leaky_relu_backward": ("T x, T dy, T alpha", "T dx", "dx = x > (T)0 ? dy : dy * alpha"),
    # m = beta1 * m + (1 - beta1) * grad;  v = beta2 * v + (1 - beta2) * grad * grad
    # param -= lr_t * m / (sqrt(v) + eps)                                       (all three in place)
    "adam_update": (
        "T grad, T lr_t, T beta1, T one_minus_beta1, T beta2, T one_minus_beta2, T eps",
        "T param, T m, T v",
        (
            "m = m * beta1 + one_minus_beta1 * grad;"
            " v = v * beta2 + one_minus_beta2 * grad * grad;"
            " param -= lr_t * m / (sqrt(v) + eps)"
        ),
    ),
}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _import_cupy():
    try:
        import cupy
    except ImportError as exc:
        raise BackendUnavailable(f"CuPy is not installed; {INSTALL_HINT}") from exc
    except Exception as exc:  # an installed but broken CuPy (missing CUDA libraries, ...)
        raise BackendUnavailable(f"CuPy does not import ({_first_line(exc)}); {INSTALL_HINT}") from exc
    return cupy


@functools.cache
def _elementwise(name: str):
    import cupy

    in_params, out_params, operation = _ELEMENTWISE[name]
    return cupy.ElementwiseKernel(in_params, out_params, operation, f"calosim_{name}")


def _expect(actual, expected, what: str) -> None:
    if tuple(actual) != tuple(expected):
        raise ValueError(f"{what}: expected shape {tuple(expected)}, got {tuple(actual)}")


class CupyBackend(NumpyBackend):
    """CUDA kernels through CuPy; float32 or float64."""

    name = "cupy"
    xp = None  # cupy, set on construction (imported lazily)

    def __init__(self, dtype: str = "float32"):
        super().__init__(dtype)
        self.xp = _import_cupy()

    @classmethod
    def check_available(cls) -> None:
        cupy = _import_cupy()
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:  # CUDARuntimeError: no driver, a driver older than the wheel's CUDA, ...
            raise BackendUnavailable(
                f"no usable CUDA device ({_first_line(exc)}); on a GPU machine, check that the cupy wheel "
                f"matches the driver's CUDA version (nvidia-smi), see README"
            ) from exc
        if count < 1:
            raise BackendUnavailable("no CUDA device found (CuPy is installed, but the driver sees no GPU)")

    # ----------------------------------------------------------------- arrays
    def to_numpy(self, a):
        return self.xp.asnumpy(a)

    def synchronize(self) -> None:
        self.xp.cuda.Device().synchronize()

    def matmul(self, a, b, out=None):
        return self.xp.matmul(a, b, out=out)  # cuBLAS

    # ----------------------------------------------------------------- kernel launches
    def _function(self, module: str, kernel: str):
        """The compiled kernel (a ``cupy.RawKernel``), called as ``f(grid, block, args)``."""
        return cuda_loader.function(module, kernel)

    def _operands(self, *arrays):
        """``arrays`` as C-contiguous device arrays of one floating dtype (that of the first)."""
        dtype = np.dtype(arrays[0].dtype)
        if dtype not in _SUFFIX:
            raise TypeError(f"the cupy backend computes in float32 or float64, got {dtype}")
        out = []
        for a in arrays:
            if np.dtype(a.dtype) != dtype:
                raise TypeError(f"mixed dtypes: {a.dtype} with {dtype}")
            out.append(self.xp.ascontiguousarray(self.xp.asarray(a)))
        return out

    def _launch(self, module: str, kernel: str, dtype, n_threads: int, *args) -> None:
        """Run ``kernel`` (``_f32`` / ``_f64`` picked by ``dtype``; none if None) over ``n_threads`` threads."""
        if dtype is not None:
            kernel = f"{kernel}_{_SUFFIX[np.dtype(dtype)]}"
        cargs = []
        for a in args:
            if isinstance(a, (int, np.integer)):
                if not -(2**31) <= int(a) < 2**31:
                    raise OverflowError(f"{kernel}: extent {a} does not fit a 32-bit int")
                cargs.append(np.int32(a))
            else:
                if not a.flags.c_contiguous:  # a RawKernel reads raw memory and would ignore the strides
                    raise ValueError(f"{kernel}: array arguments must be C-contiguous")
                cargs.append(a)
        if n_threads <= 0:
            return
        blocks = min(-(-n_threads // _THREADS_PER_BLOCK), _MAX_BLOCKS)
        self._function(module, kernel)((blocks,), (_THREADS_PER_BLOCK,), tuple(cargs))

    @staticmethod
    def _n_parts(rows: int, width: int) -> int:
        """Parts of a two-pass column sum over ``rows``: a function of the shapes only (deterministic)."""
        return max(1, min(rows, _MAX_PARTS, -(-_PARTIAL_SUM_THREADS // max(width, 1))))

    # ----------------------------------------------------------------- locally connected 2D
    def lc2d_forward(self, x, w, b, kernel, stride):
        x, w = self._operands(x, w)
        n, h, wd, ci = x.shape
        (kh, kw), (sh, sw) = kernel, stride
        ho, wo = conv_output_size(h, kh, sh), conv_output_size(wd, kw, sw)
        co = w.shape[3]
        _expect(w.shape, (ho, wo, kh * kw * ci, co), "lc2d_forward weights")
        if b is not None:
            (b,) = self._operands(b.reshape(ho, wo, co) if b.size == ho * wo * co else b)
            _expect(b.shape, (ho, wo, co), "lc2d_forward bias")
        y = self.xp.empty((n, ho, wo, co), dtype=x.dtype)
        self._launch("lc2d", "lc2d_forward", x.dtype, y.size, x, w, w if b is None else b, y,
                     n, h, wd, ci, ho, wo, co, kh, kw, sh, sw, int(b is not None))
        return y

    def lc2d_backward_data(self, dy, w, x_shape, kernel, stride):
        dy, w = self._operands(dy, w)
        n, h, wd, ci = x_shape
        (kh, kw), (sh, sw) = kernel, stride
        ho, wo = conv_output_size(h, kh, sh), conv_output_size(wd, kw, sw)
        co = dy.shape[3]
        _expect(dy.shape, (n, ho, wo, co), "lc2d_backward_data dy")
        _expect(w.shape, (ho, wo, kh * kw * ci, co), "lc2d_backward_data weights")
        dx = self.xp.empty((n, h, wd, ci), dtype=dy.dtype)
        self._launch("lc2d", "lc2d_backward_data", dy.dtype, dx.size, dy, w, dx,
                     n, h, wd, ci, ho, wo, co, kh, kw, sh, sw)
        return dx

    def lc2d_backward_weight(self, x, dy, kernel, stride):
        x, dy = self._operands(x, dy)
        n, h, wd, ci = x.shape
        (kh, kw), (sh, sw) = kernel, stride
        ho, wo = conv_output_size(h, kh, sh), conv_output_size(wd, kw, sw)
        co = dy.shape[3]
        _expect(dy.shape, (n, ho, wo, co), "lc2d_backward_weight dy")
        dw = self.xp.empty((ho, wo, kh * kw * ci, co), dtype=x.dtype)
        self._launch("lc2d", "lc2d_backward_weight", x.dtype, dw.size, x, dy, dw,
                     n, h, wd, ci, ho, wo, co, kh, kw, sh, sw)
        return dw

    # ----------------------------------------------------------------- convolution ('valid')
    def conv2d_forward(self, x, w, b, stride):
        x, w = self._operands(x, w)
        n, h, wd, ci = x.shape
        kh, kw, ci_w, co = w.shape
        (sh, sw) = stride
        _expect((ci_w,), (ci,), "conv2d_forward weight input channels")
        ho, wo = conv_output_size(h, kh, sh), conv_output_size(wd, kw, sw)
        if b is not None:
            (b,) = self._operands(b.reshape(co) if b.size == co else b)
            _expect(b.shape, (co,), "conv2d_forward bias")
        y = self.xp.empty((n, ho, wo, co), dtype=x.dtype)
        self._launch("conv2d", "conv2d_forward", x.dtype, y.size, x, w, w if b is None else b, y,
                     n, h, wd, ci, ho, wo, co, kh, kw, sh, sw, int(b is not None))
        return y

    def conv2d_backward_data(self, dy, w, x_shape, stride):
        dy, w = self._operands(dy, w)
        n, h, wd, ci = x_shape
        kh, kw, ci_w, co = w.shape
        (sh, sw) = stride
        _expect((ci_w,), (ci,), "conv2d_backward_data weight input channels")
        ho, wo = conv_output_size(h, kh, sh), conv_output_size(wd, kw, sw)
        _expect(dy.shape, (n, ho, wo, co), "conv2d_backward_data dy")
        dx = self.xp.empty((n, h, wd, ci), dtype=dy.dtype)
        self._launch("conv2d", "conv2d_backward_data", dy.dtype, dx.size, dy, w, dx,
                     n, h, wd, ci, ho, wo, co, kh, kw, sh, sw)
        return dx

    def conv2d_backward_weight(self, x, dy, kernel, stride):
        x, dy = self._operands(x, dy)
        n, h, wd, ci = x.shape
        (kh, kw), (sh, sw) = kernel, stride
        ho, wo = conv_output_size(h, kh, sh), conv_output_size(wd, kw, sw)
        co = dy.shape[3]
        _expect(dy.shape, (n, ho, wo, co), "conv2d_backward_weight dy")
        k = kh * kw * ci * co
        n_parts = self._n_parts(n * ho * wo, k)
        partial = self.xp.empty((n_parts, k), dtype=x.dtype)
        self._launch("conv2d", "conv2d_backward_weight_partial", x.dtype, partial.size, x, dy, partial,
                     n, h, wd, ci, ho, wo, co, kh, kw, sh, sw, n_parts)
        if n_parts == 1:
            return partial.reshape(kh, kw, ci, co)
        dw = self.xp.empty((kh, kw, ci, co), dtype=x.dtype)
        self._launch("conv2d", "sum_parts", x.dtype, k, partial, dw, n_parts, k)
        return dw

    # ----------------------------------------------------------------- shape ops and their adjoints
    def pad2d(self, x, pad):
        (x,) = self._operands(x)
        (top, bottom), (left, right) = pad
        if min(top, bottom, left, right) < 0:
            raise ValueError(f"pad2d: negative padding {pad}")
        n, h, w, c = x.shape
        ho, wo = h + top + bottom, w + left + right
        y = self.xp.empty((n, ho, wo, c), dtype=x.dtype)
        self._launch("pad_pool", "pad2d", x.dtype, y.size, x, y, n, h, w, c, top, left, ho, wo)
        return y

    def pad2d_backward(self, dy, pad):
        """Adjoint of :meth:`pad2d` (a crop)."""
        (dy,) = self._operands(dy)
        (top, bottom), (left, right) = pad
        n, h_pad, w_pad, c = dy.shape
        h, w = h_pad - top - bottom, w_pad - left - right
        dx = self.xp.empty((n, h, w, c), dtype=dy.dtype)
        self._launch("pad_pool", "crop2d", dy.dtype, dx.size, dy, dx, n, h, w, c, top, left, h_pad, w_pad)
        return dx

    def upsample2d(self, x, factor):
        (x,) = self._operands(x)
        n, h, w, c = x.shape
        fh, fw = factor
        y = self.xp.empty((n, h * fh, w * fw, c), dtype=x.dtype)
        self._launch("pad_pool", "upsample2d", x.dtype, y.size, x, y, n, h, w, c, fh, fw)
        return y

    def upsample2d_backward(self, dy, factor):
        """Adjoint of :meth:`upsample2d` (window sums)."""
        (dy,) = self._operands(dy)
        n, ho, wo, c = dy.shape
        fh, fw = factor
        if ho % fh or wo % fw:
            raise ValueError(f"upsample2d_backward: {dy.shape} is not a multiple of the factor {factor}")
        h, w = ho // fh, wo // fw
        dx = self.xp.empty((n, h, w, c), dtype=dy.dtype)
        self._launch("pad_pool", "upsample2d_backward", dy.dtype, dx.size, dy, dx, n, h, w, c, fh, fw)
        return dx

    def avgpool2d(self, x, pool):
        (x,) = self._operands(x)
        n, h, w, c = x.shape
        ph, pw = pool
        y = self.xp.empty((n, h // ph, w // pw, c), dtype=x.dtype)
        self._launch("pad_pool", "avgpool2d", x.dtype, y.size, x, y, n, h, w, c, ph, pw)
        return y

    def avgpool2d_backward(self, dy, pool, x_shape):
        """Adjoint of :meth:`avgpool2d` onto ``x_shape``."""
        (dy,) = self._operands(dy)
        n, h, w, c = x_shape
        ph, pw = pool
        _expect(dy.shape, (n, h // ph, w // pw, c), "avgpool2d_backward dy")
        dx = self.xp.empty((n, h, w, c), dtype=dy.dtype)
        self._launch("pad_pool", "avgpool2d_backward", dy.dtype, dx.size, dy, dx, n, h, w, c, ph, pw)
        return dx

    # ----------------------------------------------------------------- batch normalisation
    def _column_sums(self, x, shift, power: int):
        """sum over rows of (x - shift)^power for x viewed as (rows, C), accumulated in float64."""
        c = x.shape[-1]
        rows = x.size // c
        n_parts = self._n_parts(rows, c)
        partial = self.xp.empty((n_parts, c), dtype=np.float64)
        self._launch("batchnorm", "channel_partial_sum", x.dtype, partial.size, x,
                     x if shift is None else shift, partial, rows, c, n_parts, int(shift is not None), power)
        return self._sum_parts(partial)

    def _sum_parts(self, partial):
        n_parts, c = partial.shape
        out = self.xp.empty(c, dtype=np.float64)
        self._launch("batchnorm", "channel_sum_parts", None, c, partial, out, n_parts, c)
        return out

    def batchnorm_forward(self, x, gamma, beta, eps):
        x, gamma, beta = self._operands(x, gamma, beta)
        c = x.shape[-1]
        rows = x.size // c
        _expect(gamma.shape, (c,), "batchnorm_forward gamma")
        _expect(beta.shape, (c,), "batchnorm_forward beta")
        mean = (self._column_sums(x, None, 1) / rows).astype(x.dtype)
        var = (self._column_sums(x, mean, 2) / rows).astype(x.dtype)
        inv_std = 1.0 / self.xp.sqrt(var + eps)
        x_hat = self.xp.empty_like(x)
        y = self.xp.empty_like(x)
        self._launch("batchnorm", "bn_forward_apply", x.dtype, x.size, x, mean, inv_std, gamma, beta, x_hat, y,
                     rows, c)
        return y, mean, var, x_hat, inv_std

    def batchnorm_backward(self, dy, x_hat, inv_std, gamma):
        dy, x_hat, inv_std, gamma = self._operands(dy, x_hat, inv_std, gamma)
        c = dy.shape[-1]
        rows = dy.size // c
        _expect(x_hat.shape, dy.shape, "batchnorm_backward x_hat")
        n_parts = self._n_parts(rows, c)
        partial_dy = self.xp.empty((n_parts, c), dtype=np.float64)
        partial_dy_xhat = self.xp.empty((n_parts, c), dtype=np.float64)
        self._launch("batchnorm", "channel_partial_sum_dot", dy.dtype, partial_dy.size, dy, x_hat,
                     partial_dy, partial_dy_xhat, rows, c, n_parts)
        dbeta = self._sum_parts(partial_dy).astype(dy.dtype)
        dgamma = self._sum_parts(partial_dy_xhat).astype(dy.dtype)
        dx = self.xp.empty_like(dy)
        self._launch("batchnorm", "bn_backward_apply", dy.dtype, dx.size, dy, x_hat, inv_std, gamma, dbeta,
                     dgamma, dx, rows, c)
        return dx, dgamma, dbeta

    # ----------------------------------------------------------------- activations
    def leaky_relu(self, x, alpha):
        return _elementwise("leaky_relu")(x, x.dtype.type(alpha))

    def leaky_relu_backward(self, x, dy, alpha):
        return _elementwise("leaky_relu_backward")(x, dy, dy.dtype.type(alpha))

    def channel_softmax(self, x):
        """Softmax over the last axis (the attention layer's per-pixel weights)."""
        (x,) = self._operands(x)
        c = x.shape[-1]
        y = self.xp.empty_like(x)
        self._launch("softmax", "channel_softmax", x.dtype, x.size // c, x, y, x.size // c, c)
        return y

    def channel_softmax_backward(self, y, dy):
        """dL/dx of :meth:`channel_softmax` from its output ``y``."""
        y, dy = self._operands(y, dy)
        _expect(dy.shape, y.shape, "channel_softmax_backward dy")
        c = y.shape[-1]
        dx = self.xp.empty_like(y)
        self._launch("softmax", "channel_softmax_backward", y.dtype, y.size // c, y, dy, dx, y.size // c, c)
        return dx

    # ----------------------------------------------------------------- minibatch discrimination
    def mbd_forward(self, m):
        (m,) = self._operands(m)
        n, k, d = m.shape
        o = self.xp.empty((n, k), dtype=m.dtype)
        self._launch("mbd", "mbd_forward", m.dtype, o.size, m, o, n, k, d)
        return o

    def mbd_backward(self, m, do):
        m, do = self._operands(m, do)
        n, k, d = m.shape
        _expect(do.shape, (n, k), "mbd_backward do")
        dm = self.xp.empty_like(m)
        n_chunks = -(-d // 8)  # MBD_CHUNK in mbd.cu
        self._launch("mbd", "mbd_backward", m.dtype, n * k * n_chunks, m, do, dm, n, k, d)
        return dm

    # ----------------------------------------------------------------- optimiser
    def adam_update_(self, param, grad, m, v, lr_t, beta1, beta2, eps):
        t = param.dtype.type
        _elementwise("adam_update")(grad, t(lr_t), t(beta1), t(1.0 - beta1), t(beta2), t(1.0 - beta2), t(eps),
                                    param, m, v)
