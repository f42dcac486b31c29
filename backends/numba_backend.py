"""The Numba backend: the NumPy specification with its hot loops replaced by compiled kernels.

Kernels live in calosim.kernels.numba (one op per file); this module checks shapes, allocates outputs and
chooses a kernel. Matrix products (dense layers, a one-input-channel convolution's gradients) stay with BLAS through
numpy.matmul, with OpenBLAS on one thread for the whole process and products of MATMUL_SPLIT_MIN_FLOPS or
more split over the backend's own threads (see calosim.backends.blas_threads; unless OPENBLAS_NUM_THREADS
is set, which leaves OpenBLAS's threading alone). Every kernel is compiled lazily for the dtype it meets
(float32 or float64) and cached on disk. Inputs are made C-contiguous in their own dtype first (no copy
when they already are), so each kernel has one signature per dtype.
"""

from __future__ import annotations

import importlib
import os

import numpy as np

from calosim.backends.base import BackendUnavailable
from calosim.backends.blas_threads import set_openblas_threads
from calosim.backends.numpy_backend import NumpyBackend, conv_output_size

# From this batch size on, an LC2D forward transposes its weights once (L, C_out, P) and runs the tiled,
# position-major kernel (4-sample tiles); below it, each weight is read once in its own layout (batch-1
# sampling). The backward passes (training only) always run the tiled kernels.
LC2D_TILED_MIN_BATCH = 8
# Below this many multiply-adds an LC2D forward runs serially (batch-1 sampling: ~0.1 ms of work).
LC2D_SERIAL_MAX_WORK = 1 << 20
# A convolution whose patch rows (K_w * C_in values) are at least this long runs forward and backward-data on
# the tiled LC2D kernels with tied filters (no im2col buffer; 1.4-2x faster than im2col + BLAS for the
# generator's 2x2 convolutions of 36 channels); shorter rows (one input channel) stay with im2col + BLAS.
CONV_TILED_MIN_RUN = 16
# From this many FLOPs on, a matrix product is split over the backend's threads (one single-threaded BLAS
# call each, on a block of output columns or rows); below it, one call (a thread hand-off costs ~50 us).
MATMUL_SPLIT_MIN_FLOPS = 1 << 24
# Products of fewer rows than this (matrix-vector work) with at least 2^20 weights run on OpenBLAS's own
# threads for the one call.
MATMUL_THREADED_BLAS_MAX_ROWS = 8
# The convolution weight gradient builds its im2col patches for blocks of samples of at most this many
# bytes (large fresh buffers cost a page fault per 4 KB at every call).
IM2COL_BLOCK_BYTES = 16 << 20
# Element-wise kernels run in parallel only from this many cells on (memory bound below; a parallel launch
# then costs more than it saves: measured crossover near 400k cells for the leaky ReLU, near 30k for Adam's
# update, which does more per cell). Both builds give the same bits.
ELEMENTWISE_PARALLEL_MIN_SIZE = 1 << 19
ADAM_PARALLEL_MIN_SIZE = 1 << 15


def _threading_layer_default() -> None:
    """Numba's 'workqueue' layer unless the user chose one: OpenMP's spinning threads idle after a kernel
    compete with BLAS's threads on the same cores (measured: small products several times slower)."""
    import numba

    if "NUMBA_THREADING_LAYER" not in os.environ:
        numba.config.THREADING_LAYER = "workqueue"


def _blocks(size: int, parts: int, align: int) -> list[tuple[int, int]]:
    """[lo, hi) ranges cutting range(size) into at most ``parts`` blocks whose starts are multiples of align."""
    step = -(-size // parts)
    step += -step % align
    return [(lo, min(lo + step, size)) for lo in range(0, size, step)]


def _output(out, shape, dtype):
    """``out`` checked to be a C-contiguous (shape) array of dtype, or a new one when out is None."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    if tuple(out.shape) != tuple(shape) or out.dtype != dtype or not out.flags.c_contiguous:
        raise ValueError(f"matmul: out must be a C-contiguous {tuple(shape)} {np.dtype(dtype)} array, got "
                         f"{tuple(out.shape)} {out.dtype}")
    return out


def _c(a, dtype):
    return np.ascontiguousarray(a, dtype=dtype)


class NumbaBackend(NumpyBackend):
    """NumPy arrays, compiled loops; float32 or float64."""

    name = "numba"

    @classmethod
    def check_available(cls) -> None:
        try:
            importlib.import_module("numba")
        except ImportError as exc:
            raise BackendUnavailable(f"numba cannot be imported ({exc}); fix: pip install numba") from exc

    def __init__(self, dtype: str = "float32"):
        super().__init__(dtype)
        self.check_available()
        _threading_layer_default()
        from calosim.kernels.numba import activations, adam, batchnorm, conv2d, lc2d, mbd, pad2d

        self._k_lc2d, self._k_conv2d, self._k_bn = lc2d, conv2d, batchnorm
        self._k_act, self._k_mbd, self._k_adam, self._k_pad = activations, mbd, adam, pad2d
        # OpenBLAS on one thread, large products split over a thread pool of our own (see blas_threads),
        # unless the user chose OpenBLAS's threads
        self._split_products = "OPENBLAS_NUM_THREADS" not in os.environ and set_openblas_threads(1)
        self._pool = None

    @property
    def num_threads(self) -> int:
        """Threads a parallel kernel runs on (numba.get_num_threads(); NUMBA_NUM_THREADS sets it)."""
        import numba

        return numba.get_num_threads()

    # ----------------------------------------------------------------- matrix products
    def matmul(self, a, b, out=None):
        """a @ b (into ``out`` when given: a C-contiguous array of the product's shape and dtype, reused by the
        caller so that a large product does not fault in fresh pages every time); a product with at least
        MATMUL_SPLIT_MIN_FLOPS is split into one block per thread, each a single-threaded BLAS call writing
        its block of the output in place: blocks of output columns (or rows, when there are more rows) for a 2D
        b (a may have leading axes), blocks of the inner axis as partial products summed in order when it is
        at least 4 times longer than both others, blocks of the stack for stacked (B, M, K) x (B, K, N)
        products. Each block is computed the same way every time, so results are reproducible for a given
        thread count."""
        threads = self.num_threads
        if out is not None and a.ndim >= 2 and b.ndim in (2, a.ndim):
            _output(out, (*a.shape[:-1], b.shape[-1]), np.result_type(a, b))
        if not self._split_products or threads < 2 or a.ndim < 2 or b.ndim not in (2, a.ndim):
            return np.matmul(a, b, out=out)
        if b.ndim == 3:  # a stack of products, (B, M, K) x (B, K, N): one block of the stack per thread
            count, m, k = a.shape
            n = b.shape[2]
            if b.shape[0] != count or count < threads or 2 * count * m * k * n < MATMUL_SPLIT_MIN_FLOPS:
                return np.matmul(a, b, out=out)
            result = _output(out, (count, m, n), np.result_type(a, b))
            jobs = [(a[lo:hi], b[lo:hi], result[lo:hi]) for lo, hi in _blocks(count, threads, 1)]
            self._run_split(jobs, threads)
            return result
        if b.ndim != 2:
            return np.matmul(a, b, out=out)
        a2 = a.reshape(-1, a.shape[-1])
        (m, k), n = a2.shape, b.shape[1]
        long_inner = k >= 4 * max(m, n)  # a weight gradient summed over a batch of positions
        if m < MATMUL_THREADED_BLAS_MAX_ROWS and k * n >= 1 << 20 and not long_inner:
            # a few rows (batch-1 sampling): memory bound, where OpenBLAS's own threads beat split calls
            # (measured 1.7 against 2.7 ms/shower). Never in a training step: OpenBLAS's woken threads spin
            # for a while after the call and halved the speed of the products and kernels that followed.
            set_openblas_threads(threads)
            try:
                return np.matmul(a, b, out=out)
            finally:
                set_openblas_threads(1)
        if 2 * m * k * n < MATMUL_SPLIT_MIN_FLOPS:
            return np.matmul(a, b, out=out)
        dt = np.result_type(a, b)
        shape = (*a.shape[:-1], n)
        result = _output(out, shape, dt)
        flat = result.reshape(m, n)
        if long_inner:  # the first block's product lands in the result, the others' are added in order
            blocks = _blocks(k, threads, 16)
            partial = np.empty((len(blocks) - 1, m, n), dtype=dt)
            targets = [flat, *partial]
            self._run_split([(a2[:, lo:hi], b[lo:hi], targets[t]) for t, (lo, hi) in enumerate(blocks)], threads)
            for part in partial:
                flat += part
            return result
        if n >= m:  # blocks start on 64-byte boundaries
            jobs = [(a2, b[:, lo:hi], flat[:, lo:hi]) for lo, hi in _blocks(n, threads, 16)]
        else:
            jobs = [(a2[lo:hi], b, flat[lo:hi]) for lo, hi in _blocks(m, threads, 16)]
        self._run_split(jobs, threads)
        return result

    def _run_split(self, jobs, threads):
        """np.matmul(x, y, out=o) for each (x, y, o) in jobs: the first here, the others on the pool."""
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=threads - 1, thread_name_prefix="calosim-blas")
        pending = [self._pool.submit(np.matmul, x, y, out=o) for x, y, o in jobs[1:]]
        np.matmul(*jobs[0][:2], out=jobs[0][2])
        for job in pending:
            job.result()

    # ----------------------------------------------------------------- locally connected 2D
    @staticmethod
    def _lc2d_check(x_shape, w_shape, kernel, stride):
        _, h, wd, ci = x_shape
        ho, wo, p, _ = w_shape
        (kh, kw), (sh, sw) = kernel, stride
        expected = (conv_output_size(h, kh, sh), conv_output_size(wd, kw, sw), kh * kw * ci)
        if (ho, wo, p) != expected:
            raise ValueError(f"lc2d: weights {tuple(w_shape)} do not fit input {tuple(x_shape)} with kernel "
                             f"{kernel}, stride {stride} (expected (H_out, W_out, P) = {expected})")

    def _lc2d_transposed(self, w):
        """Weights (H_out, W_out, P, C_out) as wt (L, C_out, P), the layout of the tiled kernels."""
        ho, wo, p, co = w.shape
        wt = np.empty((ho * wo, co, p), dtype=w.dtype)
        self._k_lc2d.swap_last_axes(w.reshape(ho * wo, p, co), wt)
        return wt

    def lc2d_forward(self, x, w, b, kernel, stride):
        dt = np.result_type(x, w)
        x, w = _c(x, dt), _c(w, dt)
        self._lc2d_check(x.shape, w.shape, kernel, stride)
        n = x.shape[0]
        ho, wo, p, co = w.shape
        bias = _c(b, dt) if b is not None else np.zeros((0, 0, 0), dtype=dt)
        y = np.empty((n, ho, wo, co), dtype=dt)
        (kh, kw), (sh, sw) = kernel, stride
        k = self._k_lc2d
        if n >= LC2D_TILED_MIN_BATCH:
            k.lc2d_forward_tiled(x, self._lc2d_transposed(w), bias.reshape(-1, co), b is not None, kh, kw, sh, sw, y)
        elif n * ho * wo * p * co < LC2D_SERIAL_MAX_WORK:
            k.lc2d_forward_serial(x, w, bias, b is not None, kh, kw, sh, sw, y)
        else:
            k.lc2d_forward(x, w, bias, b is not None, kh, kw, sh, sw, y)
        return y

    def lc2d_backward_data(self, dy, w, x_shape, kernel, stride):
        dt = np.result_type(dy, w)
        dy, w = _c(dy, dt), _c(w, dt)
        self._lc2d_check(x_shape, w.shape, kernel, stride)
        dx = np.empty(tuple(x_shape), dtype=dt)
        self._k_lc2d.lc2d_backward_data_tiled(dy, self._lc2d_transposed(w), kernel[0], kernel[1], stride[0],
                                              stride[1], dx)
        return dx

    def lc2d_backward_weight(self, x, dy, kernel, stride):
        dt = np.result_type(x, dy)
        x, dy = _c(x, dt), _c(dy, dt)
        (kh, kw), (sh, sw) = kernel, stride
        _, ho, wo, co = dy.shape
        dw = np.empty((ho, wo, kh * kw * x.shape[3], co), dtype=dt)
        self._lc2d_check(x.shape, dw.shape, kernel, stride)
        dwt = np.empty((ho * wo, co, dw.shape[2]), dtype=dt)
        self._k_lc2d.lc2d_backward_weight_tiled(x, dy, kh, kw, sh, sw, dwt)
        self._k_lc2d.swap_last_axes(dwt, dw.reshape(dwt.shape[0], dw.shape[2], co))
        return dw

    # ----------------------------------------------------------------- convolution ('valid')
    # im2col + BLAS, the tied tiled LC2D kernels for long patch rows, a direct forward for one input channel
    # (measured here: the same bits as im2col + OpenBLAS; its gradients stay with BLAS, whose summation order
    # the trained models' results were measured with)
    def _patches_c(self, x, kernel, stride):
        n, h, wd, ci = x.shape
        (kh, kw), (sh, sw) = kernel, stride
        ho, wo = conv_output_size(h, kh, sh), conv_output_size(wd, kw, sw)
        patches = np.empty((n, ho, wo, kh * kw * ci), dtype=x.dtype)
        self._k_conv2d.im2col(x, kh, kw, sh, sw, patches)
        return patches

    def conv2d_forward(self, x, w, b, stride):
        dt = np.result_type(x, w)
        x, w = _c(x, dt), _c(w, dt)
        kh, kw, ci, co = w.shape
        if x.shape[3] != ci:
            raise ValueError(f"conv2d: input has {x.shape[3]} channels, weights expect {ci}")
        n, h, wd, _ = x.shape
        if n >= LC2D_TILED_MIN_BATCH and kw * ci >= CONV_TILED_MIN_RUN:  # an LC2D whose positions share filters
            y = np.empty((n, conv_output_size(h, kh, stride[0]), conv_output_size(wd, kw, stride[1]), co), dtype=dt)
            bias = _c(b, dt).reshape(1, co) if b is not None else np.zeros((0, co), dtype=dt)
            self._k_lc2d.lc2d_forward_tiled(x, self._conv_transposed(w), bias, b is not None, kh, kw, *stride, y)
            return y
        if ci == 1:
            y = np.empty((n, conv_output_size(h, kh, stride[0]), conv_output_size(wd, kw, stride[1]), co), dtype=dt)
            bias = _c(b, dt) if b is not None else np.zeros(0, dtype=dt)
            self._k_conv2d.single_channel_forward(x, w.reshape(kh * kw, co), bias, b is not None, kh, kw, *stride, y)
            return y
        patches = self._patches_c(x, (kh, kw), stride)
        n, ho, wo, p = patches.shape
        y = self.matmul(patches.reshape(n * ho * wo, p), w.reshape(p, co)).reshape(n, ho, wo, co)
        if b is not None:
            y += _c(b, dt)
        return y

    @staticmethod
    def _conv_transposed(w):
        """Convolution filters (K_h, K_w, C_in, C_out) as the tiled LC2D kernels' tied wt (1, C_out, P)."""
        return np.ascontiguousarray(w.reshape(-1, w.shape[3]).T).reshape(1, w.shape[3], -1)

    def conv2d_backward_data(self, dy, w, x_shape, stride):
        dt = np.result_type(dy, w)
        dy, w = _c(dy, dt), _c(w, dt)
        kh, kw, ci, co = w.shape
        n, ho, wo, _ = dy.shape
        dx = np.empty(tuple(x_shape), dtype=dt)
        if kw * ci >= CONV_TILED_MIN_RUN:
            self._k_lc2d.lc2d_backward_data_tiled(dy, self._conv_transposed(w), kh, kw, *stride, dx)
            return dx
        dpatches = self.matmul(dy.reshape(n * ho * wo, co), w.reshape(kh * kw * ci, co).T)
        self._k_conv2d.col2im(dpatches.reshape(n, ho, wo, kh * kw * ci), kh, kw, stride[0], stride[1], dx)
        return dx

    def conv2d_backward_weight(self, x, dy, kernel, stride):
        """im2col + BLAS, a block of samples at a time (patches of at most IM2COL_BLOCK_BYTES, whose buffer the
        allocator reuses: one of N x L x P values, 36 MB for the generator's first convolution, faulted in
        fresh pages at every call, 8 of its 14 ms); the blocks' products are summed in order."""
        dt = np.result_type(x, dy)
        x, dy = _c(x, dt), _c(dy, dt)
        n, ho, wo, co = dy.shape
        (kh, kw), ci = kernel, x.shape[3]
        if (conv_output_size(x.shape[1], kh, stride[0]), conv_output_size(x.shape[2], kw, stride[1])) != (ho, wo):
            raise ValueError(f"conv2d: dy {dy.shape} does not fit input {x.shape} with kernel {kernel}")
        per_sample = ho * wo * kh * kw * ci * dt.itemsize
        step = max(1, IM2COL_BLOCK_BYTES // per_sample)
        dw = None
        for lo in range(0, n, step):
            patches = self._patches_c(x[lo:lo + step], kernel, stride)
            rows = patches.shape[0] * ho * wo
            part = self.matmul(patches.reshape(rows, -1).T, dy[lo:lo + step].reshape(rows, co))
            dw = part if dw is None else dw + part
        return dw.reshape(kh, kw, ci, co)

    # ----------------------------------------------------------------- shape ops
    def pad2d(self, x, pad):
        (top, bottom), (left, right) = pad
        x = _c(x, x.dtype)
        n, h, w, c = x.shape
        y = np.empty((n, h + top + bottom, w + left + right, c), dtype=x.dtype)
        self._k_pad.pad2d(x, top, left, y)
        return y

    def pad2d_backward(self, dy, pad):
        (top, bottom), (left, right) = pad
        dy = _c(dy, dy.dtype)
        n, hp, wp, c = dy.shape
        dx = np.empty((n, hp - top - bottom, wp - left - right, c), dtype=dy.dtype)
        self._k_pad.pad2d_backward(dy, top, left, dx)
        return dx

    # ----------------------------------------------------------------- batch normalisation
    def batchnorm_forward(self, x, gamma, beta, eps):
        dt = x.dtype
        x = _c(x, dt)
        c = x.shape[-1]
        x2 = x.reshape(-1, c)
        y, x_hat = np.empty_like(x), np.empty_like(x)
        mean, var, inv_std = (np.empty(c, dtype=dt) for _ in range(3))
        self._k_bn.batchnorm_forward(x2, _c(gamma, dt), _c(beta, dt), float(eps), y.reshape(-1, c), mean, var,
                                     x_hat.reshape(-1, c), inv_std)
        return y, mean, var, x_hat, inv_std

    def batchnorm_backward(self, dy, x_hat, inv_std, gamma):
        dt = dy.dtype
        dy, x_hat = _c(dy, dt), _c(x_hat, dt)
        c = dy.shape[-1]
        dx = np.empty_like(dy)
        dgamma, dbeta = np.empty(c, dtype=dt), np.empty(c, dtype=dt)
        self._k_bn.batchnorm_backward(dy.reshape(-1, c), x_hat.reshape(-1, c), _c(inv_std, dt), _c(gamma, dt),
                                      dx.reshape(-1, c), dgamma, dbeta)
        return dx, dgamma, dbeta

    # ----------------------------------------------------------------- activations
    def leaky_relu(self, x, alpha):
        x = _c(x, x.dtype)
        y = np.empty_like(x)
        kernel = self._k_act.leaky_relu if x.size >= ELEMENTWISE_PARALLEL_MIN_SIZE else self._k_act.leaky_relu_serial
        kernel(x.reshape(-1), x.dtype.type(alpha), y.reshape(-1))
        return y

    def leaky_relu_backward(self, x, dy, alpha):
        dt = dy.dtype
        x, dy = _c(x, dt), _c(dy, dt)
        dx = np.empty_like(dy)
        big = x.size >= ELEMENTWISE_PARALLEL_MIN_SIZE
        kernel = self._k_act.leaky_relu_backward if big else self._k_act.leaky_relu_backward_serial
        kernel(x.reshape(-1), dy.reshape(-1), dt.type(alpha), dx.reshape(-1))
        return dx

    # ----------------------------------------------------------------- minibatch discrimination
    def mbd_forward(self, m):
        m = _c(m, m.dtype)
        o = np.empty(m.shape[:2], dtype=m.dtype)
        self._k_mbd.mbd_forward(m, np.ascontiguousarray(m.transpose(1, 2, 0)), o, m.dtype == np.float32)
        return o

    def mbd_backward(self, m, do):
        dt = np.result_type(m, do)
        m, do = _c(m, dt), _c(do, dt)
        if do.shape != m.shape[:2]:
            raise ValueError(f"mbd: do {do.shape} does not fit m {m.shape}")
        dm = np.empty_like(m)
        self._k_mbd.mbd_backward(m, np.ascontiguousarray(m.transpose(1, 2, 0)), do, dm, m.dtype == np.float32)
        return dm

    # ----------------------------------------------------------------- optimiser
    def adam_update_(self, param, grad, m, v, lr_t, beta1, beta2, eps):
        arrays = (param, m, v)
        if not all(a.flags.c_contiguous and a.dtype == param.dtype for a in arrays):
            return super().adam_update_(param, grad, m, v, lr_t, beta1, beta2, eps)  # views: update in place
        if grad.shape != param.shape:
            raise ValueError(f"adam: gradient {grad.shape} does not fit parameter {param.shape}")
        t = param.dtype.type
        big = param.size >= ADAM_PARALLEL_MIN_SIZE
        kernel = self._k_adam.adam_update if big else self._k_adam.adam_update_serial
        kernel(param.reshape(-1), _c(grad, param.dtype).reshape(-1), m.reshape(-1), v.reshape(-1),
               t(lr_t), t(beta1), t(beta2), t(eps), t(1.0 - beta1), t(1.0 - beta2))
