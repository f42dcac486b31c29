"""The thread count of the OpenBLAS that NumPy runs its matrix products on, read and set at run time.

OpenBLAS's worker threads spin (with sched_yield) for a while after every product; on a machine with as many
cores as threads they then compete with the next Numba kernel's threads for the same cores (measured on the
2-core reference machine: a CaloGAN training step 1.7 s with OpenBLAS on one thread, 6.3 s on two). The
Numba backend therefore pins OpenBLAS to one thread and splits large products over its own threads
(calosim.backends.numba_backend.NumbaBackend.matmul), which block instead of spinning when idle.

Found the way threadpoolctl finds it: the OpenBLAS shared library already mapped into this process (NumPy's
bundled scipy-openblas, or a system libopenblas), and its ``*openblas_set_num_threads*`` symbol. With any
other BLAS (MKL, Accelerate) nothing is found and nothing changes.
"""

from __future__ import annotations

import ctypes
import functools

_SYMBOLS = ("scipy_openblas", "openblas")  # prefixes of the exported names
_SUFFIXES = ("64_", "")


@functools.lru_cache(maxsize=1)
def _openblas():
    """(set_num_threads, get_num_threads) ctypes functions of the loaded OpenBLAS, or None."""
    import numpy  # noqa: F401  (loads NumPy's BLAS)

    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower() and ".so" in line})
    except OSError:
        return None
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in _SYMBOLS:
            for suffix in _SUFFIXES:
                setter = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                getter = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                if setter is not None and getter is not None:
                    setter.argtypes, setter.restype = [ctypes.c_int], None
                    getter.argtypes, getter.restype = [], ctypes.c_int
                    return setter, getter
    return None


def openblas_threads() -> int | None:
    """The threads OpenBLAS runs a product on, or None when NumPy's BLAS is not an OpenBLAS found here."""
    funcs = _openblas()
    return None if funcs is None else int(funcs[1]())


def set_openblas_threads(n: int) -> bool:
    """Set OpenBLAS's thread count; False (and nothing changed) when no OpenBLAS was found."""
    funcs = _openblas()
    if funcs is None:
        return False
    funcs[0](int(n))
    return True
