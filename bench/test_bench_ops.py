"""The hot ops at CaloGAN shapes, per CPU backend (float32): dense, LocallyConnected2D forward and
backward, minibatch discrimination and batch norm. Run with `pytest --benchmark-only bench/`."""

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
