"""Parity of the CuPy backend with the NumPy reference, primitive by primitive, on a CUDA device.

Skipped, with the reason, where CuPy or a device is missing. The cases (odd sizes, strides 1 and 2, batch 1)
are also run on the host through the CUDA sources compiled for the CPU (tests/test_cuda_compile.py), which
checks the kernels' index arithmetic and CupyBackend's launch code on machines without a GPU.
"""

from __future__ import annotations

import numpy as np
import pytest

from calosim.backends import BackendUnavailable, get_backend
from calosim.backends.cupy_backend import CupyBackend

pytestmark = pytest.mark.gpu

TOLERANCE = {"float32": 1e-5, "float64": 1e-12}


# ----------------------------------------------------------------- cases: (be, rng) -> list of outputs
def _lc2d(n, h, w, ci, co, kernel, stride, bias=True):
    def case(be, rng):
        ho, wo = (h - kernel[0]) // stride[0] + 1, (w - kernel[1]) // stride[1] + 1
        x = be.asarray(rng.standard_normal((n, h, w, ci)))
        wt = be.asarray(rng.standard_normal((ho, wo, kernel[0] * kernel[1] * ci, co)))
        b = be.asarray(rng.standard_normal((ho, wo, co))) if bias else None
        dy = be.asarray(rng.standard_normal((n, ho, wo, co)))
        return [be.lc2d_forward(x, wt, b, kernel, stride), be.lc2d_backward_data(dy, wt, x.shape, kernel, stride),
                be.lc2d_backward_weight(x, dy, kernel, stride)]
    return case


def _conv2d(n, h, w, ci, co, kernel, stride, bias=True):
    def case(be, rng):
        ho, wo = (h - kernel[0]) // stride[0] + 1, (w - kernel[1]) // stride[1] + 1
        x = be.asarray(rng.standard_normal((n, h, w, ci)))
        wt = be.asarray(rng.standard_normal((*kernel, ci, co)))
        b = be.asarray(rng.standard_normal(co)) if bias else None
        dy = be.asarray(rng.standard_normal((n, ho, wo, co)))
        return [be.conv2d_forward(x, wt, b, stride), be.conv2d_backward_data(dy, wt, x.shape, stride),
                be.conv2d_backward_weight(x, dy, kernel, stride)]
    return case


def _pad(shape, pad):
    def case(be, rng):
        x = be.asarray(rng.standard_normal(shape))
        y = be.pad2d(x, pad)
        dy = be.asarray(rng.standard_normal(y.shape))
        (top, bottom), (left, right) = pad
        if isinstance(be, CupyBackend):
            dx = be.pad2d_backward(dy, pad)
        else:  # ZeroPad2D.backward
            dx = dy[:, top : dy.shape[1] - bottom, left : dy.shape[2] - right, :]
        return [y, dx]
    return case


def _upsample(shape, factor):
    def case(be, rng):
        x = be.asarray(rng.standard_normal(shape))
        y = be.upsample2d(x, factor)
        dy = be.asarray(rng.standard_normal(y.shape))
        if isinstance(be, CupyBackend):
            dx = be.upsample2d_backward(dy, factor)
        else:  # UpSampling2D.backward
            n, h, w, c = dy.shape
            dx = dy.reshape(n, h // factor[0], factor[0], w // factor[1], factor[1], c).sum(axis=(2, 4))
        return [y, dx]
    return case


def _avgpool(shape, pool):
    def case(be, rng):
        x = be.asarray(rng.standard_normal(shape))
        y = be.avgpool2d(x, pool)
        dy = be.asarray(rng.standard_normal(y.shape))
        if isinstance(be, CupyBackend):
            dx = be.avgpool2d_backward(dy, pool, x.shape)
        else:  # AveragePooling2D.backward
            ho, wo = dy.shape[1:3]
            dx = be.xp.zeros(x.shape, dtype=dy.dtype)
            dx[:, : ho * pool[0], : wo * pool[1], :] = be.upsample2d(dy * dy.dtype.type(1.0 / (pool[0] * pool[1])),
                                                                     pool)
        return [y, dx]
    return case


def _batchnorm(shape):
    def case(be, rng):
        c = shape[-1]
        x = be.asarray(3.0 + 2.0 * rng.standard_normal(shape))
        gamma, beta = be.asarray(rng.standard_normal(c)), be.asarray(rng.standard_normal(c))
        y, mean, var, x_hat, inv_std = be.batchnorm_forward(x, gamma, beta, 1e-3)
        dy = be.asarray(rng.standard_normal(shape))
        return [y, mean, var, x_hat, inv_std, *be.batchnorm_backward(dy, x_hat, inv_std, gamma)]
    return case


def _softmax(shape):
    def case(be, rng):
        x = be.asarray(4.0 * rng.standard_normal(shape))
        dy = be.asarray(rng.standard_normal(shape))
        if isinstance(be, CupyBackend):
            y = be.channel_softmax(x)
            return [y, be.channel_softmax_backward(y, dy)]
        xp = be.xp  # ChannelSoftmax.forward / backward
        e = xp.exp(x - x.max(axis=-1, keepdims=True))
        y = e / e.sum(axis=-1, keepdims=True)
        return [y, y * (dy - (dy * y).sum(axis=-1, keepdims=True))]
    return case


def _mbd(n, k, d):
    def case(be, rng):
        m = be.asarray(0.3 * rng.standard_normal((n, k, d)))
        do = be.asarray(rng.standard_normal((n, k)))
        return [be.mbd_forward(m), be.mbd_backward(m, do)]
    return case


def _matmul(shape_a, shape_b):
    def case(be, rng):
        return [be.matmul(be.asarray(rng.standard_normal(shape_a)), be.asarray(rng.standard_normal(shape_b)))]
    return case


def _leaky_relu(shape, alpha):
    def case(be, rng):
        x = be.asarray(rng.standard_normal(shape))
        dy = be.asarray(rng.standard_normal(shape))
        return [be.leaky_relu(x, alpha), be.leaky_relu_backward(x, dy, alpha)]
    return case


def _adam(shape):
    def case(be, rng):
        param, grad = be.asarray(rng.standard_normal(shape)), be.asarray(rng.standard_normal(shape))
        m, v = be.asarray(0.1 * rng.standard_normal(shape)), be.asarray(rng.random(shape))
        be.adam_update_(param, grad, m, v, 1e-3, 0.9, 0.999, 1e-7)
        return [param, m, v]
    return case


#: cases run by raw CUDA kernels (also emulated on the host)
KERNEL_CASES = {
    "lc2d_s1_batch1": _lc2d(1, 7, 5, 3, 5, (3, 3), (1, 1)),
    "lc2d_s2": _lc2d(3, 8, 7, 2, 3, (3, 2), (2, 2)),  # row 7 lies past the last window
    "lc2d_s12_nobias": _lc2d(2, 5, 9, 3, 1, (2, 3), (1, 2), bias=False),
    "conv2d_s1_batch1": _conv2d(1, 7, 5, 3, 5, (3, 3), (1, 1)),
    "conv2d_s2": _conv2d(3, 9, 8, 2, 3, (3, 3), (2, 2)),
    "conv2d_s21_nobias": _conv2d(2, 8, 5, 3, 7, (2, 1), (2, 1), bias=False),
    "pad_batch1": _pad((1, 5, 3, 3), ((1, 1), (1, 1))),
    "pad_asymmetric": _pad((3, 5, 7, 2), ((0, 2), (1, 0))),
    "upsample_batch1": _upsample((1, 3, 5, 3), (2, 2)),
    "upsample_uneven": _upsample((3, 5, 3, 2), (3, 1)),
    "avgpool_batch1": _avgpool((1, 6, 4, 3), (2, 2)),
    "avgpool_floor": _avgpool((3, 7, 5, 2), (2, 3)),
    "batchnorm_image": _batchnorm((3, 5, 7, 3)),
    "batchnorm_dense_batch1x": _batchnorm((1, 7, 1, 5)),
    "batchnorm_dense": _batchnorm((9, 11)),
    "softmax_attention": _softmax((3, 5, 7, 2)),
    "softmax_batch1_c5": _softmax((1, 3, 5, 5)),
    "mbd_batch1": _mbd(1, 3, 5),
    "mbd": _mbd(7, 5, 11),  # D = 11 spans two register chunks
}

#: cases run by cupy itself (cuBLAS, ElementwiseKernel)
CUPY_CASES = {
    "matmul": _matmul((7, 5), (5, 3)),
    "matmul_batched": _matmul((3, 7, 5), (3, 5, 9)),
    "leaky_relu": _leaky_relu((3, 5, 7, 2), 0.3),
    "relu": _leaky_relu((1, 13), 0.0),
    "adam": _adam((5, 7)),
}


def run_parity(backend, case, seed: int = 0) -> None:
    """Run ``case`` on ``backend`` and on the NumPy reference from the same seed; compare every output."""
    reference = get_backend("numpy", backend.dtype)
    expected = case(reference, np.random.default_rng(seed))
    got = case(backend, np.random.default_rng(seed))
    assert len(got) == len(expected)
    for k, (g, e) in enumerate(zip(got, expected)):
        g, e = backend.to_numpy(g), np.asarray(e)
        assert g.shape == e.shape, f"output {k}: shape {g.shape} != {e.shape}"
        assert g.dtype == e.dtype, f"output {k}: dtype {g.dtype} != {e.dtype}"
        scale = max(float(np.max(np.abs(e))), 1e-30) if e.size else 1.0
        err = float(np.max(np.abs(g.astype(np.float64) - e))) / scale if e.size else 0.0
        assert err < TOLERANCE[backend.dtype], f"output {k}: relative error {err:.3g}"


# ----------------------------------------------------------------- on the device
@pytest.fixture(params=["float32", "float64"])
def cupy_backend(request):
    try:
        return get_backend("cupy", request.param)
    except BackendUnavailable as exc:
        pytest.skip(f"cupy backend unavailable: {exc}")


@pytest.mark.parametrize("name", sorted(KERNEL_CASES) + sorted(CUPY_CASES))
def test_parity_with_numpy(cupy_backend, name):
    run_parity(cupy_backend, {**KERNEL_CASES, **CUPY_CASES}[name])


@pytest.mark.parametrize("name", ["conv2d_s2", "batchnorm_image", "mbd"])
def test_kernels_are_deterministic(cupy_backend, name):
    first = KERNEL_CASES[name](cupy_backend, np.random.default_rng(1))
    second = KERNEL_CASES[name](cupy_backend, np.random.default_rng(1))
    for a, b in zip(first, second):
        assert np.array_equal(cupy_backend.to_numpy(a), cupy_backend.to_numpy(b))


def test_large_reduction_uses_several_parts(cupy_backend):
    # enough rows that the two-pass column sums split into many parts
    be = cupy_backend
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4000, 3, 3, 4))
    _, mean, var, _, _ = be.batchnorm_forward(be.asarray(x), be.asarray(np.ones(4)), be.asarray(np.zeros(4)), 1e-3)
    assert be._n_parts(x.size // 4, 4) > 1
    np.testing.assert_allclose(be.to_numpy(mean), x.mean(axis=(0, 1, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(be.to_numpy(var), x.var(axis=(0, 1, 2)), rtol=1e-5)


def test_rejects_views_at_launch(cupy_backend):
    be = cupy_backend
    x = be.xp.zeros((4, 4), dtype=be.dtype)[:, ::2]
    with pytest.raises(ValueError, match="C-contiguous"):
        be._launch("softmax", "channel_softmax", x.dtype, 4, x, x, 4, 2)
