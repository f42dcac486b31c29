"""Work beyond one process: sharded jobs on Dask (calosim.distributed.shards) for ``generate`` and
``simulate --engine geant4``, and data-parallel training on MPI (calosim.distributed.mpi).

Both engines are optional (the ``distributed`` extra); nothing here is imported unless ``--dask`` or
``--distributed`` is given.
"""
