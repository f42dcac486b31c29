"""Data-parallel training on MPI (mpi4py): each of K ranks computes the gradients of its slice of every global
batch, and one allreduce per optimiser step averages them.

    mpiexec -n K calosim train --distributed ...      (srun -n K ... under SLURM)

What makes K ranks train as one process does (calosim.training.loop wires it in):

- **Data:** every rank reads the same shuffled order and takes rows [r B/K, (r+1) B/K) of each global batch of
  B rows (:meth:`DataParallel.local_rows`); B must be a multiple of K with at least 2 rows per rank.
- **Noise:** the trainer's noise stream and every Dropout stream are wrapped in :class:`RankSlicedGenerator`:
  a draw for the rank's rows is drawn for the whole global batch and the rank's rows returned, so every stream
  advances exactly as in one process, on every rank alike; checkpoints stay global and a run resumes with any K.
- **Gradients:** Adam's ``gradient_reducer`` (calosim.optim) packs the gradients of its parameters into one flat
  buffer in parameter order and averages it over the ranks with one Allreduce (NCCL on the cupy backend where
  available). Every loss is a mean over the batch, so the mean of the ranks' gradients over equal slices is the
  gradient of the global batch, up to float32 summation order; the result does not depend on timing.
- **What couples the rows of a batch** does not split exactly: BatchNorm uses each rank's own statistics by
  default (as PyTorch DDP does), or, with ``sync_batchnorm``, the global batch's (calosim.layers.norm: one
  allreduce of the per-channel sums in the forward and one in the backward); CaloGAN's minibatch discrimination
  sees only the rank's slice. Models without such layers (wgan-gp, vae) train as one process does.
- **Files:** rank 0 alone writes the run directory; loss values logged are means over all ranks.

The cupy path (one GPU per rank, chosen by the node-local rank; gradients through cupy.cuda.nccl) is written
but has not run on a GPU.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np

from calosim.errors import ConfigError

INSTALL_EXTRA = "pip install 'calosim[distributed]'"
# Set by the launchers (MPICH/Intel hydra, Open MPI, PMIx, SLURM's srun) in every process they start.
LAUNCHER_VARIABLES = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALRANKID")


class DistributedSetupError(ConfigError):
    """A setup error every rank meets alike (so every rank stops, and only rank 0 needs to say why)."""


class DataParallel:
    """This process's place in a data-parallel job: ``rank`` of ``size``, and the collectives the training loop,
    Adam and BatchNorm need. ``comm`` is an mpi4py communicator."""

    def __init__(self, comm):
        self.comm = comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self._nccl = None  # a cupy.cuda.nccl.NcclCommunicator once attach_backend finds one
        self._xp = np

    @classmethod
    def from_environment(cls) -> DataParallel:
        """The job this process was started in by mpiexec / srun; DistributedSetupError (one line) without
        mpi4py or without a launcher."""
        if importlib.util.find_spec("mpi4py") is None:
            raise DistributedSetupError(f"--distributed needs mpi4py, in the distributed extra: {INSTALL_EXTRA}")
        if not any(name in os.environ for name in LAUNCHER_VARIABLES) and "SLURM_STEP_ID" not in os.environ:
            raise DistributedSetupError("--distributed: this process was not started by an MPI launcher; run "
                                        "mpiexec -n K calosim train --distributed ... (srun -n K under SLURM)")
        from mpi4py import MPI

        return cls(MPI.COMM_WORLD)

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def attach_backend(self, backend) -> None:
        """Use ``backend``'s arrays for the collectives. On cupy: one GPU per rank (the node-local rank modulo the
        node's GPUs) and NCCL for the allreduce where cupy has it, else staging through host memory.
        UNTESTED on a GPU (written for it; no device was available)."""
        self._xp = backend.xp
        if backend.name != "cupy":
            return
        import cupy
        from mpi4py import MPI

        local_rank = self.comm.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()
        cupy.cuda.Device(local_rank % cupy.cuda.runtime.getDeviceCount()).use()
        try:
            from cupy.cuda import nccl
        except ImportError:
            return
        if not nccl.available:
            return
        uid = self.comm.bcast(nccl.get_unique_id() if self.is_root else None, root=0)
        self._nccl = nccl.NcclCommunicator(self.size, uid, self.rank)

    def local_rows(self, global_batch: int) -> slice:
        """This rank's rows of a global batch of ``global_batch`` rows."""
        if global_batch % self.size:
            raise DistributedSetupError(f"--distributed: the global batch of {global_batch} does not split into "
                                        f"{self.size} equal slices; choose a --batch-size that is a multiple of "
                                        f"{self.size}")
        local = global_batch // self.size
        if local < 2:
            raise DistributedSetupError(f"--distributed: {self.size} ranks leave {local} row per rank of the global "
                                        f"batch of {global_batch}; each rank needs at least 2")
        return slice(self.rank * local, (self.rank + 1) * local)

    def sum_over_ranks(self, array):
        """The element-wise sum of ``array`` (a contiguous backend array) over all ranks, in place; returned."""
        if self.size == 1:
            return array
        if self._nccl is not None:  # UNTESTED: no GPU was available
            import cupy
            from cupy.cuda import nccl

            dtypes = {np.dtype(np.float32): nccl.NCCL_FLOAT32, np.dtype(np.float64): nccl.NCCL_FLOAT64}
            self._nccl.allReduce(array.data.ptr, array.data.ptr, array.size, dtypes[array.dtype], nccl.NCCL_SUM,
                                 cupy.cuda.get_current_stream().ptr)
            return array
        from mpi4py import MPI

        if self._xp is np:
            self.comm.Allreduce(MPI.IN_PLACE, array, op=MPI.SUM)
            return array
        host = self._xp.asnumpy(array)  # cupy without NCCL: through host memory
        self.comm.Allreduce(MPI.IN_PLACE, host, op=MPI.SUM)
        array[...] = self._xp.asarray(host)
        return array

    def average_gradients(self, grads: list) -> list:
        """The mean over the ranks of every gradient of ``grads`` (an optimiser's, in parameter order), through
        one allreduce of one flat buffer; new arrays of the gradients' shapes and dtypes."""
        if self.size == 1:
            return grads
        xp = self._xp
        flat = xp.concatenate([xp.ravel(g).astype(grads[0].dtype, copy=False) for g in grads])
        self.sum_over_ranks(flat)
        flat /= self.size
        out, start = [], 0
        for g in grads:
            out.append(flat[start:start + g.size].reshape(g.shape).astype(g.dtype, copy=False))
            start += g.size
        return out

    def mean_over_ranks(self, values: dict[str, float]) -> dict[str, float]:
        """Each value averaged over the ranks (every rank must pass the same keys)."""
        keys = sorted(values)
        buffer = np.array([values[k] for k in keys], np.float64)
        if self.size > 1:
            from mpi4py import MPI

            self.comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
        return {k: float(v) / self.size for k, v in zip(keys, buffer)}

    def barrier(self) -> None:
        self.comm.Barrier()

    def abort(self, code: int = 1) -> None:
        """End every rank of the job (a failure on one rank would leave the others waiting in a collective)."""
        self.comm.Abort(code)


class RankSlicedGenerator:
    """A numpy Generator as one rank of a data-parallel job sees it: a draw whose first axis is the rank's batch
    (or ``k`` batches stacked, as a discriminator's real and fake halves) is drawn for the global batch (``k``
    global batches) and the rank's rows are returned. The stream advances as in one process, on every rank
    alike. Other draws, and every draw while ``enabled`` is False, pass through. Everything else (bit_generator
    for checkpoints) is the wrapped generator's."""

    def __init__(self, rng: np.random.Generator, rows: slice, global_batch: int):
        self.rng, self.rows, self.global_batch = rng, rows, global_batch
        self.local_batch = rows.stop - rows.start
        self.enabled = True

    def __getattr__(self, name):
        return getattr(self.rng, name)

    def _draw(self, method: str, size, **kw):
        shape = None if size is None else ((int(size),) if np.ndim(size) == 0 else tuple(int(s) for s in size))
        if not self.enabled or not shape or shape[0] % self.local_batch:
            return getattr(self.rng, method)(size=size, **kw)
        blocks = shape[0] // self.local_batch
        full = getattr(self.rng, method)(size=(blocks * self.global_batch, *shape[1:]), **kw)
        mine = full.reshape(blocks, self.global_batch, *shape[1:])[:, self.rows]
        return np.ascontiguousarray(mine.reshape(shape))

    def standard_normal(self, size=None, dtype=np.float64):
        return self._draw("standard_normal", size, dtype=dtype)

    def normal(self, loc=0.0, scale=1.0, size=None):
        return self._draw("normal", size, loc=loc, scale=scale)

    def uniform(self, low=0.0, high=1.0, size=None):
        return self._draw("uniform", size, low=low, high=high)

    def random(self, size=None, dtype=np.float64):
        return self._draw("random", size, dtype=dtype)

    def integers(self, low, high=None, size=None, dtype=np.int64, endpoint=False):
        return self._draw("integers", size, low=low, high=high, dtype=dtype, endpoint=endpoint)
