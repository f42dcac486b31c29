"""The CUDA sources of the CuPy backend build, and compute what the NumPy reference computes, without a GPU.

- every kernels/cuda/*.cu compiles to PTX with ``nvcc --ptx -arch=sm_80`` (where nvcc is on PATH), so a
  syntax or type error cannot land unseen;
- every .cu also compiles for the host with a C++ compiler and a small prelude standing in for the CUDA
  built-ins; each launch then runs every thread of a tiny grid in turn (the kernels' grid-stride loops cover
  all the work whatever the grid). CupyBackend, with NumPy arrays and these host kernels in place of CuPy,
  runs the device test cases of tests/test_cupy_backend.py against the NumPy reference: this checks the
  kernels' index arithmetic and the backend's launch code (argument order, extents, output shapes).

Not covered here (tests/test_cupy_backend.py on a device covers them): NVRTC compilation through CuPy, the
ElementwiseKernels, cuBLAS, real parallel execution.
"""

from __future__ import annotations

import ctypes
import importlib.util
import pathlib
import re
import shutil
import subprocess

import numpy as np
import pytest

from calosim.backends.cupy_backend import CupyBackend
from calosim.backends.numpy_backend import NumpyBackend
from calosim.kernels import cuda_loader

CUDA_DIR = pathlib.Path(cuda_loader.__file__).resolve().parent / "cuda"
CU_FILES = sorted(CUDA_DIR.glob("*.cu"))

# the CUDA built-ins the kernels use, for a host C++ compiler
HOST_PRELUDE = r"""
#include <cmath>
#include <algorithm>
using std::min;
using std::max;
#define __global__
#define __device__
#define __forceinline__ inline
struct calosim_dim3 { unsigned int x, y, z; };
static calosim_dim3 threadIdx = {0, 0, 0}, blockIdx = {0, 0, 0}, blockDim = {1, 1, 1}, gridDim = {1, 1, 1};
extern "C" void calosim_emulate_thread(unsigned int grid, unsigned int block, unsigned int b, unsigned int t)
{
    gridDim.x = grid; blockDim.x = block; blockIdx.x = b; threadIdx.x = t;
}
"""
EMULATED_GRID, EMULATED_BLOCK = 2, 3  # 6 threads: every grid-stride loop goes round several times


def test_sources_are_listed():
    assert sorted(p.stem for p in CU_FILES) == sorted(cuda_loader.CUDA_SOURCES)
    for name in cuda_loader.CUDA_SOURCES:
        assert cuda_loader.source(name) == (CUDA_DIR / f"{name}.cu").read_text(encoding="utf-8")


@pytest.mark.parametrize("cu", CU_FILES, ids=[p.name for p in CU_FILES])
def test_compiles_to_ptx(cu, tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not on PATH: the CUDA sources are compiled to PTX where the CUDA toolkit is installed")
    ptx = tmp_path / f"{cu.stem}.ptx"
    result = subprocess.run([nvcc, "--ptx", "-arch=sm_80", "-o", str(ptx), str(cu)], check=False,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"nvcc failed on {cu.name}:\n{result.stderr}"
    text = ptx.read_text()
    for entry in _entry_points(cu):
        assert f".entry {entry}(" in text, f"{entry} missing from the PTX of {cu.name}"


def _entry_points(cu: pathlib.Path) -> list[str]:
    """The extern "C" kernels of a .cu: plain ones, and ``<name>_##SUFFIX`` ones for f32 and f64."""
    text = cu.read_text(encoding="utf-8")
    names = re.findall(r'extern "C" __global__ void (\w+)\(', text)
    for name in re.findall(r'extern "C" __global__ void (\w+)_##SUFFIX\(', text):
        names += [f"{name}_f32", f"{name}_f64"]
    return names


# ----------------------------------------------------------------- host emulation
@pytest.fixture(scope="module")
def host_libraries(tmp_path_factory):
    cxx = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if cxx is None:
        pytest.skip("no host C++ compiler (c++, g++ or clang++) to emulate the CUDA kernels with")
    out = tmp_path_factory.mktemp("cuda_host")
    prelude = out / "prelude.h"
    prelude.write_text(HOST_PRELUDE)
    libraries = {}
    for cu in CU_FILES:
        lib = out / f"lib{cu.stem}.so"
        cmd = [cxx, "-std=c++14", "-O1", "-shared", "-fPIC", "-Wall", "-Wno-unknown-pragmas", "-include",
               str(prelude), "-x", "c++", str(cu), "-o", str(lib)]
        result = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"host compile of {cu.name} failed:\n{result.stderr}"
        assert "warning" not in result.stderr, f"host compile of {cu.name} warned:\n{result.stderr}"
        libraries[cu.stem] = ctypes.CDLL(str(lib))
    return libraries


class _HostKernel:
    """Calls an extern "C" kernel compiled for the host once per thread of a small emulated grid."""

    def __init__(self, library, name: str):
        self.library, self.function = library, getattr(library, name)
        self.function.restype = None

    def __call__(self, grid, block, args):
        cargs = []
        for a in args:
            if isinstance(a, np.ndarray):
                cargs.append(ctypes.c_void_p(a.ctypes.data))
            elif isinstance(a, np.int32):
                cargs.append(ctypes.c_int32(int(a)))
            else:
                raise TypeError(f"kernel argument of type {type(a).__name__}: pass arrays and np.int32 only")
        for b in range(EMULATED_GRID):
            for t in range(EMULATED_BLOCK):
                self.library.calosim_emulate_thread(EMULATED_GRID, EMULATED_BLOCK, b, t)
                self.function(*cargs)


class HostEmulatedCupyBackend(CupyBackend):
    """CupyBackend's own launch code, with NumPy arrays and the kernels compiled for the host."""

    name = "cupy-host-emulated"
    xp = np

    def __init__(self, libraries, dtype: str = "float32"):
        NumpyBackend.__init__(self, dtype)  # skips CupyBackend's CuPy import
        self.xp = np
        self._libraries = libraries

    def to_numpy(self, a):
        return np.asarray(a)

    def _function(self, module: str, kernel: str):
        return _HostKernel(self._libraries[module], kernel)


def _device_cases():
    path = pathlib.Path(__file__).with_name("test_cupy_backend.py")
    spec = importlib.util.spec_from_file_location("_calosim_cupy_cases", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CASES = _device_cases()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(CASES.KERNEL_CASES))
def test_host_emulated_kernels_match_numpy(host_libraries, name, dtype):
    CASES.run_parity(HostEmulatedCupyBackend(host_libraries, dtype), CASES.KERNEL_CASES[name])


def test_host_emulated_reductions_in_several_parts(host_libraries, monkeypatch):
    # force the two-pass column sums (conv2d weight gradient, batch norm) to split into many uneven parts
    monkeypatch.setattr("calosim.backends.cupy_backend._PARTIAL_SUM_THREADS", 7)
    be = HostEmulatedCupyBackend(host_libraries, "float64")
    assert be._n_parts(3 * 5 * 7, 3) > 1
    for name in ("conv2d_s2", "conv2d_s1_batch1", "batchnorm_image", "batchnorm_dense"):
        CASES.run_parity(be, CASES.KERNEL_CASES[name])


def test_launch_rejects_views(host_libraries):
    be = HostEmulatedCupyBackend(host_libraries)
    x = np.zeros((4, 4), dtype=np.float32)[:, ::2]
    with pytest.raises(ValueError, match="C-contiguous"):
        be._launch("softmax", "channel_softmax", x.dtype, 4, x, x, 4, 2)
