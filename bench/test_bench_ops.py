"""The hot ops at CaloGAN shapes, per CPU backend (float32): dense, LocallyConnected2D forward and
backward (the generator's and the discriminator's first), the generator's convolution, minibatch
discrimination and batch norm. Run with `pytest --benchmark-only bench/`."""

from __future__ import annotations

import numpy as np
import pytest

from calosim.backends import backend_status, get_backend

BACKENDS = [name for name, state in backend_status().items() if state == "available"]
BATCHES = (1, 128, 1024)
# The CaloGAN generator's layer-0 stream: (N, 5, 98, 16) -> LC2D(6, 2x2) -> (N, 4, 97, 6)
LC2D_INPUT, LC2D_KERNEL, LC2D_FILTERS = (5, 98, 16), (2, 2), 6


def _arrays(backend, *shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [backend.asarray(rng.standard_normal(s)) for s in shapes]


def _run(benchmark, backend, fn):
    def timed():
        fn()
        backend.synchronize()

    benchmark.pedantic(timed, rounds=5, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("backend_name", BACKENDS)
def test_dense_forward(benchmark, record, backend_name, batch):
    be = get_backend(backend_name)
    x, w = _arrays(be, (batch, 1024), (1024, 17640))
    record(backend=backend_name, batch=batch, op="dense 1024->17640")
    _run(benchmark, be, lambda: be.matmul(x, w))


@pytest.mark.parametrize("direction", ["forward", "backward_data", "backward_weight"])
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("backend_name", BACKENDS)
def test_lc2d(benchmark, record, backend_name, batch, direction):
    be = get_backend(backend_name)
    h, w, c = LC2D_INPUT
    ho, wo = h - 1, w - 1
    x, weight, bias, dy = _arrays(be, (batch, h, w, c), (ho, wo, 4 * c, LC2D_FILTERS), (ho, wo, LC2D_FILTERS),
                                  (batch, ho, wo, LC2D_FILTERS))
    ops = {
        "forward": lambda: be.lc2d_forward(x, weight, bias, LC2D_KERNEL, (1, 1)),
        "backward_data": lambda: be.lc2d_backward_data(dy, weight, x.shape, LC2D_KERNEL, (1, 1)),
        "backward_weight": lambda: be.lc2d_backward_weight(x, dy, LC2D_KERNEL, (1, 1)),
    }
    record(backend=backend_name, batch=batch, op=f"lc2d {direction} (5,98,16)->(4,97,6)")
    _run(benchmark, be, ops[direction])


@pytest.mark.parametrize("direction", ["forward", "backward_data", "backward_weight"])
@pytest.mark.parametrize("backend_name", BACKENDS)
def test_lc2d_discriminator(benchmark, record, backend_name, direction):
    """The discriminator's first LC2D at the training batch: (128, 5, 98, 64) -> LC2D(16, 3x3, stride (1, 2))
    -> (128, 3, 48, 16), 0.34 GFLOP per pass; the largest LC2D work of a training iteration."""
    be = get_backend(backend_name)
    batch, kernel, stride = 128, (3, 3), (1, 2)
    x, weight, bias, dy = _arrays(be, (batch, 5, 98, 64), (3, 48, 9 * 64, 16), (3, 48, 16), (batch, 3, 48, 16))
    ops = {
        "forward": lambda: be.lc2d_forward(x, weight, bias, kernel, stride),
        "backward_data": lambda: be.lc2d_backward_data(dy, weight, x.shape, kernel, stride),
        "backward_weight": lambda: be.lc2d_backward_weight(x, dy, kernel, stride),
    }
    record(backend=backend_name, batch=batch, op=f"lc2d {direction} (5,98,64)->(3,48,16)", gflop=0.3397)
    _run(benchmark, be, ops[direction])


@pytest.mark.parametrize("direction", ["forward", "backward_data", "backward_weight"])
@pytest.mark.parametrize("backend_name", BACKENDS)
def test_conv2d_generator(benchmark, record, backend_name, direction):
    """The generator's layer-0 convolution at the training batch: (128, 6, 99, 36) -> Conv2D(16, 2x2) ->
    (128, 5, 98, 16) (the 'same' padding done before), 0.29 GFLOP per pass."""
    be = get_backend(backend_name)
    x, weight, bias, dy = _arrays(be, (128, 6, 99, 36), (2, 2, 36, 16), (16,), (128, 5, 98, 16))
    ops = {
        "forward": lambda: be.conv2d_forward(x, weight, bias, (1, 1)),
        "backward_data": lambda: be.conv2d_backward_data(dy, weight, x.shape, (1, 1)),
        "backward_weight": lambda: be.conv2d_backward_weight(x, dy, (2, 2), (1, 1)),
    }
    record(backend=backend_name, batch=128, op=f"conv2d {direction} (6,99,36)->(5,98,16)", gflop=0.2890)
    _run(benchmark, be, ops[direction])


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_minibatch_discrimination(benchmark, record, backend_name):
    be = get_backend(backend_name)
    (m, do) = _arrays(be, (256, 10, 10), (256, 10))
    record(backend=backend_name, batch=256, op="mbd forward+backward 10x10")
    _run(benchmark, be, lambda: (be.mbd_forward(m), be.mbd_backward(m, do)))


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_batchnorm(benchmark, record, backend_name):
    be = get_backend(backend_name)
    x, dy, gamma, beta = _arrays(be, (256, 5, 98, 16), (256, 5, 98, 16), (16,), (16,))

    def fwd_bwd():
        _, _, _, x_hat, inv_std = be.batchnorm_forward(x, gamma, beta, 1e-3)
        be.batchnorm_backward(dy, x_hat, inv_std, gamma)

    record(backend=backend_name, batch=256, op="batchnorm forward+backward (5,98,16)")
    _run(benchmark, be, fwd_bwd)
