"""Every primitive the Numba backend overrides gives the NumPy specification's results (float32 and float64),
and the NumPy specification gives the loop references' results (tests/reference_ops.py)."""

from __future__ import annotations

import numpy as np
import pytest
from reference_ops import conv2d_naive, lc2d_naive, tie_filters

from calosim.backends import get_backend

# max|a - b| / max|b| allowed between two backends, per dtype (stated once).
TOLERANCE = {"float32": 1e-5, "float64": 1e-12}
DTYPES = ("float32", "float64")

# (N, H, W, C_in, C_out, kernel, stride): odd sizes, batch 1, kernels 2x2 / 3x3 / 5x5, strides 1 and 2.
WINDOW_CASES = [
    (1, 5, 9, 3, 4, (2, 2), (1, 1)),
    (3, 7, 6, 2, 5, (3, 3), (2, 2)),
    (2, 9, 11, 3, 2, (5, 5), (1, 2)),
    (9, 6, 13, 4, 3, (2, 3), (2, 1)),
    (1, 11, 11, 1, 1, (5, 5), (2, 2)),
]
WINDOW_IDS = [f"n{c[0]}-{c[1]}x{c[2]}x{c[3]}-k{c[5][0]}x{c[5][1]}-s{c[6][0]}{c[6][1]}" for c in WINDOW_CASES]


def rel_error(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), np.finfo(np.float64).tiny))


@pytest.fixture(params=("numpy", "numba"))
def backend(request):
    return request.param


@pytest.fixture(params=DTYPES)
def dtype(request):
    return request.param


def both(dtype):
    return get_backend("numpy", dtype), get_backend("numba", dtype)


def check(name, fast, ref, dtype, **inputs):
    err = rel_error(fast, ref)
    shapes = {k: getattr(v, "shape", v) for k, v in inputs.items()}
    assert err < TOLERANCE[dtype], f"{name} {dtype}: relative error {err:.3g} with inputs {shapes}"


def window_arrays(rng, case, dtype, lc2d: bool):
    n, h, w, ci, co, (kh, kw), (sh, sw) = case
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    x = rng.standard_normal((n, h, w, ci)).astype(dtype)
    wshape = (ho, wo, kh * kw * ci, co) if lc2d else (kh, kw, ci, co)
    weights = rng.standard_normal(wshape).astype(dtype)
    bias = rng.standard_normal((ho, wo, co) if lc2d else (co,)).astype(dtype)
    dy = rng.standard_normal((n, ho, wo, co)).astype(dtype)
    return x, weights, bias, dy


# ----------------------------------------------------------------- LC2D and convolution
# The tiled kernels (forward from batch 8 on, both backward passes always) work on 4-sample x 4-output
# (forward), 2-sample x 8-output (data) and 4-sample x 2-output (weight) tiles: batches and widths that are
# not multiples of those exercise the clamped tails.
TILE_CASES = [
    (8, 5, 12, 6, 16, (3, 3), (1, 2)),
    (11, 4, 7, 3, 5, (2, 2), (1, 1)),
    (13, 6, 9, 2, 1, (2, 3), (2, 1)),
    (9, 5, 8, 4, 9, (3, 2), (1, 2)),
]
LC2D_CASES = WINDOW_CASES + TILE_CASES
LC2D_IDS = WINDOW_IDS + [f"n{c[0]}-ci{c[3]}-co{c[4]}" for c in TILE_CASES]

# Convolutions whose patch rows (K_w * C_in) are long enough for the tiled kernels with tied filters (forward
# from batch 8 on, backward-data at any batch); the generator's is (2, 2) over 36 channels.
CONV_TILED_CASES = [
    (8, 6, 9, 9, 5, (2, 2), (1, 1)),
    (11, 7, 8, 16, 3, (3, 2), (2, 1)),
    (3, 5, 6, 36, 16, (2, 2), (1, 1)),
]
# One input channel (the discriminator's first convolutions): the direct kernels, odd sample counts against
# the weight gradient's sample blocks.
CONV_SINGLE_CHANNEL_CASES = [
    (11, 4, 13, 1, 64, (2, 2), (1, 1)),
    (5, 7, 9, 1, 7, (3, 2), (2, 1)),
]
CONV_CASES = WINDOW_CASES + CONV_TILED_CASES + CONV_SINGLE_CHANNEL_CASES
CONV_IDS = (WINDOW_IDS + [f"tied-n{c[0]}-ci{c[3]}-co{c[4]}" for c in CONV_TILED_CASES]
            + [f"one-channel-n{c[0]}-co{c[4]}-s{c[6][0]}{c[6][1]}" for c in CONV_SINGLE_CHANNEL_CASES])


@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("case", LC2D_CASES, ids=LC2D_IDS)
def test_lc2d_parity(case, use_bias, dtype):
    rng = np.random.default_rng(11)
    ref, fast = both(dtype)
    x, w, b, dy = window_arrays(rng, case, dtype, lc2d=True)
    b = b if use_bias else None
    kernel, stride = case[5], case[6]
    check("lc2d_forward", fast.lc2d_forward(x, w, b, kernel, stride), ref.lc2d_forward(x, w, b, kernel, stride),
          dtype, x=x, w=w)
    check("lc2d_backward_data", fast.lc2d_backward_data(dy, w, x.shape, kernel, stride),
          ref.lc2d_backward_data(dy, w, x.shape, kernel, stride), dtype, dy=dy, w=w)
    check("lc2d_backward_weight", fast.lc2d_backward_weight(x, dy, kernel, stride),
          ref.lc2d_backward_weight(x, dy, kernel, stride), dtype, x=x, dy=dy)


@pytest.mark.parametrize("n", [1, 3, 16])
def test_lc2d_parity_calogan_shape(n, dtype):
    """CaloGAN's first-layer shape, on both sides of the batch size where the forward changes kernel."""
    rng = np.random.default_rng(12)
    ref, fast = both(dtype)
    x, w, b, dy = window_arrays(rng, (n, 5, 98, 16, 6, (2, 2), (1, 1)), dtype, lc2d=True)
    check("lc2d_forward", fast.lc2d_forward(x, w, b, (2, 2), (1, 1)), ref.lc2d_forward(x, w, b, (2, 2), (1, 1)),
          dtype, x=x)
    check("lc2d_backward_weight", fast.lc2d_backward_weight(x, dy, (2, 2), (1, 1)),
          ref.lc2d_backward_weight(x, dy, (2, 2), (1, 1)), dtype, x=x)


@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv2d_parity(case, use_bias, dtype):
    rng = np.random.default_rng(13)
    ref, fast = both(dtype)
    x, w, b, dy = window_arrays(rng, case, dtype, lc2d=False)
    b = b if use_bias else None
    stride = case[6]
    check("conv2d_forward", fast.conv2d_forward(x, w, b, stride), ref.conv2d_forward(x, w, b, stride), dtype, x=x)
    check("conv2d_backward_data", fast.conv2d_backward_data(dy, w, x.shape, stride),
          ref.conv2d_backward_data(dy, w, x.shape, stride), dtype, dy=dy)
    check("conv2d_backward_weight", fast.conv2d_backward_weight(x, dy, case[5], stride),
          ref.conv2d_backward_weight(x, dy, case[5], stride), dtype, x=x, dy=dy)


@pytest.mark.parametrize("case", WINDOW_CASES, ids=WINDOW_IDS)
def test_forward_against_loop_references(case, backend):
    """Both backends' LC2D and convolution forwards against the four-loop references, in float64."""
    rng = np.random.default_rng(14)
    be = get_backend(backend, "float64")
    kernel, stride = case[5], case[6]
    x, w, b, _ = window_arrays(rng, case, "float64", lc2d=True)
    check("lc2d_forward vs loops", be.lc2d_forward(x, w, b, kernel, stride), lc2d_naive(x, w, b, kernel, stride),
          "float64", x=x)
    x, w, b, _ = window_arrays(rng, case, "float64", lc2d=False)
    check("conv2d_forward vs loops", be.conv2d_forward(x, w, b, stride), conv2d_naive(x, w, b, stride),
          "float64", x=x)


@pytest.mark.parametrize("case", WINDOW_CASES, ids=WINDOW_IDS)
def test_tied_lc2d_is_conv2d(case, backend):
    """An LC2D layer whose filters are all the same is a convolution: forward and data gradient agree, and the
    LC2D weight gradient summed over positions is the convolution's weight gradient."""
    rng = np.random.default_rng(15)
    be = get_backend(backend, "float64")
    kernel, stride = case[5], case[6]
    x, w_conv, b_conv, dy = window_arrays(rng, case, "float64", lc2d=False)
    ho, wo = dy.shape[1:3]
    w_lc = tie_filters(w_conv, ho, wo)
    b_lc = np.broadcast_to(b_conv, (ho, wo, b_conv.size)).copy()
    check("tied lc2d forward", be.lc2d_forward(x, w_lc, b_lc, kernel, stride), be.conv2d_forward(x, w_conv, b_conv,
          stride), "float64", x=x)
    check("tied lc2d backward_data", be.lc2d_backward_data(dy, w_lc, x.shape, kernel, stride),
          be.conv2d_backward_data(dy, w_conv, x.shape, stride), "float64", dy=dy)
    dw_lc = be.lc2d_backward_weight(x, dy, kernel, stride).sum(axis=(0, 1)).reshape(w_conv.shape)
    check("tied lc2d backward_weight", dw_lc, be.conv2d_backward_weight(x, dy, kernel, stride), "float64", x=x)


# ----------------------------------------------------------------- shape ops
# (a shape, b shape): products above the split threshold, split by columns, by rows, with leading axes, a
# transposed operand (the dense layer's weight gradient), a single row (batch-1 sampling), a stack
# and a long inner axis (a convolution's weight gradient).
MATMUL_CASES = [((64, 300), (300, 1100)), ((3000, 70), (70, 48)), ((5, 7, 600), (600, 900)),
                ((300, 64), (64, 1300)), ((1, 2048), (2048, 5000)), ((37, 128, 576), (37, 576, 16)),
                ((144, 30000), (30000, 16))]


@pytest.mark.parametrize("shapes", MATMUL_CASES, ids=[f"{a}x{b}" for a, b in MATMUL_CASES])
def test_matmul_parity(shapes, dtype):
    rng = np.random.default_rng(16)
    ref, fast = both(dtype)
    a = rng.standard_normal(shapes[0]).astype(dtype)
    b = rng.standard_normal(shapes[1]).astype(dtype)
    if shapes in (((300, 64), (64, 1300)), ((144, 30000), (30000, 16))):
        a = np.ascontiguousarray(a.T).T  # a transposed view, as x.T in a weight gradient
    out = fast.matmul(a, b)
    assert out.shape == (*a.shape[:-1], b.shape[-1]) and out.flags.c_contiguous
    check("matmul", out, ref.matmul(a, b), dtype, a=a, b=b)


@pytest.mark.parametrize("shapes", MATMUL_CASES, ids=[f"{a}x{b}" for a, b in MATMUL_CASES])
def test_matmul_into_out(shapes):
    """The product written into a caller's array equals the fresh product (every split path); a wrong out is
    refused."""
    rng = np.random.default_rng(22)
    fast = get_backend("numba", "float32")
    a = rng.standard_normal(shapes[0]).astype(np.float32)
    b = rng.standard_normal(shapes[1]).astype(np.float32)
    fresh = fast.matmul(a, b)
    out = np.full(fresh.shape, np.nan, dtype=np.float32)
    assert fast.matmul(a, b, out=out) is out
    np.testing.assert_array_equal(out, fresh)
    with pytest.raises(ValueError, match="out must be"):
        fast.matmul(a, b, out=np.empty(out.shape, np.float64))


def test_pad2d_parity(dtype):
    rng = np.random.default_rng(16)
    ref, fast = both(dtype)
    x = rng.standard_normal((2, 5, 7, 3)).astype(dtype)
    for pad in (((0, 1), (0, 1)), ((2, 1), (0, 3)), ((0, 0), (0, 0))):
        out = fast.pad2d(x, pad)
        assert out.dtype == x.dtype
        np.testing.assert_array_equal(out, ref.pad2d(x, pad))
        dy = rng.standard_normal(out.shape).astype(dtype)
        np.testing.assert_array_equal(fast.pad2d_backward(dy, pad), ref.pad2d_backward(dy, pad))


# ----------------------------------------------------------------- batch normalisation
@pytest.mark.parametrize("shape", [(1, 3), (7, 5), (4, 5, 9, 6), (1, 3, 3, 1)])
def test_batchnorm_parity(shape, dtype):
    rng = np.random.default_rng(17)
    ref, fast = both(dtype)
    x = (3.0 + 2.0 * rng.standard_normal(shape)).astype(dtype)
    gamma = rng.standard_normal(shape[-1]).astype(dtype)
    beta = rng.standard_normal(shape[-1]).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    names = ("y", "mean", "var", "x_hat", "inv_std")
    outs_fast, outs_ref = fast.batchnorm_forward(x, gamma, beta, 1e-3), ref.batchnorm_forward(x, gamma, beta, 1e-3)
    for name, a, b in zip(names, outs_fast, outs_ref):
        assert a.dtype == np.dtype(dtype), name
        check(f"batchnorm_forward {name}", a, b, dtype, x=x)
    _, _, _, x_hat, inv_std = outs_ref
    for name, a, b in zip(("dx", "dgamma", "dbeta"), fast.batchnorm_backward(dy, x_hat, inv_std, gamma),
                          ref.batchnorm_backward(dy, x_hat, inv_std, gamma)):
        check(f"batchnorm_backward {name}", a, b, dtype, dy=dy)


# ----------------------------------------------------------------- activations
@pytest.mark.parametrize("alpha", [0.0, 0.2])
def test_leaky_relu_parity(alpha, dtype):
    rng = np.random.default_rng(18)
    ref, fast = both(dtype)
    x = rng.standard_normal((3, 5, 7, 2)).astype(dtype)
    x[0, 0, 0, 0] = 0.0
    dy = rng.standard_normal(x.shape).astype(dtype)
    check("leaky_relu", fast.leaky_relu(x, alpha), ref.leaky_relu(x, alpha), dtype, x=x)
    check("leaky_relu_backward", fast.leaky_relu_backward(x, dy, alpha), ref.leaky_relu_backward(x, dy, alpha),
          dtype, x=x)


# ----------------------------------------------------------------- minibatch discrimination
@pytest.mark.parametrize("shape", [(1, 3, 4), (9, 5, 3)])
def test_mbd_parity(shape, dtype):
    rng = np.random.default_rng(19)
    ref, fast = both(dtype)
    m = (0.3 * rng.standard_normal(shape)).astype(dtype)
    do = rng.standard_normal(shape[:2]).astype(dtype)
    check("mbd_forward", fast.mbd_forward(m), ref.mbd_forward(m), dtype, m=m)
    check("mbd_backward", fast.mbd_backward(m, do), ref.mbd_backward(m, do), dtype, m=m)


# ----------------------------------------------------------------- optimiser
@pytest.mark.parametrize("shape", [(1,), (13, 7), (3, 4, 5, 2)])
def test_adam_parity(shape, dtype):
    rng = np.random.default_rng(20)
    ref, fast = both(dtype)
    arrays = {k: rng.standard_normal(shape).astype(dtype) for k in ("param", "grad", "m")}
    arrays["v"] = np.abs(rng.standard_normal(shape)).astype(dtype)
    copies = {k: v.copy() for k, v in arrays.items()}
    ids = {k: id(v) for k, v in arrays.items()}
    for be, a in ((fast, arrays), (ref, copies)):
        for _ in range(3):
            be.adam_update_(a["param"], a["grad"], a["m"], a["v"], 1e-3, 0.9, 0.999, 1e-7)
    assert {k: id(v) for k, v in arrays.items()} == ids
    for k in ("param", "m", "v"):
        check(f"adam {k}", arrays[k], copies[k], dtype)


def test_parallel_and_serial_builds_agree_bit_for_bit(dtype):
    """The backend picks a kernel's parallel or serial build by size; both must give the same bits (training
    results do not depend on which ran, nor on the thread count)."""
    from calosim.kernels.numba import activations, adam

    rng = np.random.default_rng(21)
    t = np.dtype(dtype).type
    flat = (1.0 + rng.standard_normal(53287)).astype(dtype)
    dy = rng.standard_normal(flat.shape).astype(dtype)
    runs = []
    for forward, backward in ((activations.leaky_relu, activations.leaky_relu_backward),
                              (activations.leaky_relu_serial, activations.leaky_relu_backward_serial)):
        out, grad = np.empty_like(flat), np.empty_like(flat)
        forward(flat, t(0.3), out)
        backward(flat, dy, t(0.3), grad)
        runs.append([out, grad])
    for kernel in (adam.adam_update, adam.adam_update_serial):
        param, m, v = flat.copy(), 0.1 * dy, np.abs(flat) * 1e-3
        for _ in range(3):
            kernel(param, dy, m, v, t(2e-4), t(0.5), t(0.999), t(1e-7), t(0.5), t(1e-3))
        runs.append([param, m, v])
    for parallel, serial in zip(runs[0::2], runs[1::2]):
        for a, b in zip(parallel, serial):
            np.testing.assert_array_equal(a, b)


def test_every_numba_kernel_has_its_own_disk_cache():
    """Numba keys its disk cache by a function's name and line only: two builds sharing one (a parallel and a
    serial build of one function) load each other's code."""
    import importlib
    import pkgutil

    from numba.core.registry import CPUDispatcher

    import calosim.kernels.numba as kernels

    caches: dict[str, list[str]] = {}
    for module_info in pkgutil.iter_modules(kernels.__path__):
        module = importlib.import_module(f"calosim.kernels.numba.{module_info.name}")
        for name, obj in vars(module).items():
            if isinstance(obj, CPUDispatcher):
                index = getattr(getattr(getattr(obj, "_cache", None), "_cache_file", None), "_index_name", None)
                if index is None:
                    pytest.skip("this numba version names its cache files differently")
                caches.setdefault(index, []).append(f"{module_info.name}.{name}")
    shared = {index: names for index, names in caches.items() if len(names) > 1}
    assert len(caches) > 20 and not shared, shared


def test_vectorised_exp_follows_numpy():
    from calosim.kernels.numba.mbd import exp_neg

    x = np.concatenate([np.linspace(0.0, 90.0, 20001), [1e-8, 0.5, 0.6931472, 50.25]]).astype(np.float32)
    out, bits = np.empty_like(x), np.empty(x.shape, np.int32)
    exp_neg.py_func(x, out, bits)  # the same code NumPy-interpreted ...
    compiled = np.empty_like(x)
    from numba import njit

    njit(lambda a, o, b: exp_neg(a, o, b))(x, compiled, bits)  # ... and compiled
    ref = np.exp(-x.astype(np.float64))
    for got in (out, compiled):
        rel = np.abs(got - ref) / ref
        assert rel[x < 5].max() < 5e-7 and rel[x < 80].max() < 5e-6, (rel[x < 5].max(), rel[x < 80].max())
