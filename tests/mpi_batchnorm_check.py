"""Run under ``mpiexec -n K python tests/mpi_batchnorm_check.py`` (tests/test_distributed_mpi.py does): a
BatchNorm with synchronised statistics on each rank's slice of a batch gives the rows, parameter gradients (after
the ranks' average, as Adam's reducer takes it) and moving statistics of one BatchNorm on the whole batch, in
float64. Exit status 0 when every rank agrees, 1 with the differences printed otherwise."""

import sys

import numpy as np
from mpi4py import MPI

from calosim import layers as L
from calosim.backends import get_backend
from calosim.distributed.mpi import DataParallel

parallel = DataParallel(MPI.COMM_WORLD)
be = get_backend("numpy", "float64")
rng = np.random.default_rng(0)
x = rng.normal(2.0, 3.0, (4 * parallel.size, 3, 5))  # (N, H, C): statistics over N and H, per channel C
dy = rng.normal(size=x.shape)
rows = parallel.local_rows(len(x))


def batchnorm(reducer):
    layer = L.BatchNorm(momentum=0.9)
    layer.build(x.shape[1:], be, np.random.default_rng(1))
    layer.params["gamma"].value[...] = rng.uniform(0.5, 2.0, x.shape[-1])
    layer.statistics_reducer = reducer
    return layer


whole, mine = batchnorm(None), batchnorm(parallel)
mine.params["gamma"].value[...] = whole.params["gamma"].value
y_whole = whole.forward(x, True)
dx_whole = whole.backward(dy / len(x))  # the loss: a mean over the batch
y_mine = mine.forward(x[rows], True)
dx_mine = mine.backward(dy[rows] / (len(x) // parallel.size))  # each rank: the mean over its slice
grads = parallel.average_gradients([mine.params["gamma"].grad, mine.params["beta"].grad])
checks = {"y": (y_mine, y_whole[rows]), "dx (x K)": (dx_mine, parallel.size * dx_whole[rows]),
          "dgamma": (grads[0], whole.params["gamma"].grad), "dbeta": (grads[1], whole.params["beta"].grad),
          "moving_mean": (mine.state["moving_mean"], whole.state["moving_mean"]),
          "moving_variance": (mine.state["moving_variance"], whole.state["moving_variance"])}
bad = {k: float(np.max(np.abs(a - b))) for k, (a, b) in checks.items() if not np.allclose(a, b, rtol=1e-10, atol=1e-12)}
if bad:
    print(f"rank {parallel.rank}: synchronised BatchNorm differs from one batch: {bad}")
sys.exit(1 if bad else 0)
