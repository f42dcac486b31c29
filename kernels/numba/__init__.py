"""Numba kernels, one op per file. Plain functions: the caller allocates every output.

FASTMATH is the one flag set every kernel uses: it allows reassociation and contraction (vectorised
reductions, FMA) but keeps NaN and infinity checks valid (no "nnan", no "ninf").
"""

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


def parallel_and_serial(fn):
    """(parallel build, serial build) of the kernel ``fn``, both cached on disk.

    Numba names a function's cache after its qualified name and line, and does not tell builds with other
    flags apart: two builds of one function share one cache, and whichever compiled first was loaded for
    both (measured: the "parallel" Adam update ran the serial code, 3.2x slower on two threads). The serial
    build compiles a copy of the function under its own name.
    """
    import types

    from numba import njit

    copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_serial", fn.__defaults__, fn.__closure__)
    copy.__qualname__ = fn.__qualname__ + "_serial"
    copy.__doc__ = fn.__doc__
    return (njit(parallel=True, fastmath=FASTMATH, cache=True)(fn),
            njit(fastmath=FASTMATH, cache=True)(copy))
