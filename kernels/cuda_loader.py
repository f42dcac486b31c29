"""CUDA sources of the CuPy backend: one ``kernels/cuda/<name>.cu`` file is one CuPy ``RawModule``.

A module is compiled (by NVRTC, through CuPy) the first time one of its kernels is asked for, and memoised
for the life of the process; CuPy itself caches the compiled binary on disk across processes. Nothing here
imports CuPy until a kernel is requested, so the package imports fine without it.
"""

from __future__ import annotations

import functools
from importlib import resources

#: the files under kernels/cuda/, without the .cu suffix
CUDA_SOURCES = ("batchnorm", "conv2d", "lc2d", "mbd", "pad_pool", "softmax")


def source(name: str) -> str:
    """The text of ``kernels/cuda/<name>.cu`` (shipped as package data of calosim.kernels)."""
    if name not in CUDA_SOURCES:
        raise ValueError(f"unknown CUDA source {name!r}; choose one of {', '.join(CUDA_SOURCES)}")
    return resources.files("calosim.kernels").joinpath("cuda", f"{name}.cu").read_text(encoding="utf-8")


@functools.cache
def module(name: str):
    """The compiled ``cupy.RawModule`` of ``kernels/cuda/<name>.cu``."""
    import cupy

    return cupy.RawModule(code=source(name))


@functools.cache
def function(module_name: str, kernel_name: str):
    """The ``cupy.RawKernel`` ``kernel_name`` (an extern "C" entry point) of the module ``module_name``."""
    return module(module_name).get_function(kernel_name)
