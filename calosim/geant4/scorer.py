"""The CaloGAN readout during Geant4 tracking: compiled (scorer.cc) or, as a fallback, Python.

Both fill one float64 buffer per shower (MeV): the cells of every layer in order, each (rows, cols) row-major
with rows along x and columns along y, then one overflow cell per layer.

The compiled stepping action is built on first use with the system C++ compiler ($CXX, else c++ / g++) into
calosim's cache (~/.cache/calosim/geant4-scorer/<hash>/), linked against the geant4_pybind extension module;
no Geant4 headers are needed (scorer.cc declares the few it uses, see there). It needs geant4-pybind 0.1.3
(the ABI it was checked against). Without a compiler, or with another geant4-pybind, or with
CALOSIM_G4_SCORER=python, the Python stepping action is used: same cells, about 2x slower overall.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.metadata
import importlib.util
import math
import os
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import numpy as np

from calosim.geant4.datasets import cache_dir
from calosim.geant4.detector import HALF_WIDTH_MM, LAYER_ZMAX_MM
from calosim.geometry import Geometry

ABI_CHECKED = "0.1.3"  # the geant4-pybind version whose binary scorer.cc's declarations were checked against
SOURCE = Path(__file__).with_name("scorer.cc")


def readout(geometry: Geometry):
    """(zmax, nx, ny, half): per-layer upper depth edges (mm), rows (x) and columns (y), window half-width."""
    nx = [layer.shape[0] for layer in geometry.layers]
    ny = [layer.shape[1] for layer in geometry.layers]
    if len(nx) != len(LAYER_ZMAX_MM):
        raise ValueError(f"geometry {geometry.name!r} has {len(nx)} layers; the Geant4 detector has "
                         f"{len(LAYER_ZMAX_MM)}")
    return LAYER_ZMAX_MM, nx, ny, HALF_WIDTH_MM


def cell_finder(geometry: Geometry):
    """cell_of(x, y, z) -> buffer index of a pre-step point (mm): the Python twin of CellOf in scorer.cc."""
    zmax, nx, ny, half = readout(geometry)
    offsets = np.concatenate([[0], np.cumsum([a * b for a, b in zip(nx, ny)])]).tolist()
    last = len(nx) - 1
    dx = [2.0 * half / n for n in nx]
    dy = [2.0 * half / n for n in ny]
    floor = math.floor

    def cell_of(x: float, y: float, z: float) -> int:
        layer = 0
        while layer < last and not z < zmax[layer]:
            layer += 1
        if not (-half < x < half and -half < y < half):
            return offsets[-1] + layer
        ix = min(int(floor((x + half) / dx[layer])), nx[layer] - 1)
        iy = min(int(floor((y + half) / dy[layer])), ny[layer] - 1)
        return offsets[layer] + ix * ny[layer] + iy

    return cell_of


def _extension_path() -> Path | None:
    spec = importlib.util.find_spec("geant4_pybind")
    return Path(spec.origin) if spec is not None and spec.origin else None


def geant4_pybind_version() -> str:
    try:
        return importlib.metadata.version("geant4-pybind")
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def build_scorer() -> tuple[Path | None, str]:
    """(path of the compiled scorer library, "") or (None, why the Python scorer will be used).

    Compiled once per source / extension-module pair and cached; safe against concurrent builds.
    """
    if os.environ.get("CALOSIM_G4_SCORER", "").lower() == "python":
        return None, "CALOSIM_G4_SCORER=python"
    return compile_against_geant4(SOURCE, "geant4-scorer", "libcalosim_g4scorer.so")


def compile_against_geant4(source_path: Path, cache_name: str, library_name: str) -> tuple[Path | None, str]:
    """(path, "") of ``source_path`` compiled into a shared library linked against the geant4_pybind extension
    module, or (None, why not). Cached in calosim's cache under ``cache_name``/<hash of source and extension>/;
    safe against concurrent builds. Only for the geant4-pybind version the declarations were checked against.
    """
    version = geant4_pybind_version()
    if version != ABI_CHECKED:
        return None, f"{source_path.name} is checked against geant4-pybind {ABI_CHECKED}, found {version}"
    ext = _extension_path()
    if ext is None:
        return None, "geant4_pybind is not installed"
    compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if not compiler:
        return None, "no C++ compiler found (set CXX)"
    source = source_path.read_bytes()
    key = hashlib.sha256(source + str(ext).encode() + str(ext.stat().st_mtime_ns).encode()).hexdigest()[:16]
    target = cache_dir() / cache_name / key / library_name
    if target.is_file():
        return target, ""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".build.", suffix=".so", dir=target.parent)
    os.close(fd)
    cmd = [compiler, "-O2", "-std=c++17", "-fPIC", "-shared", str(source_path), "-o", tmp, f"-L{ext.parent}",
           f"-l:{ext.name}", f"-Wl,-rpath,{ext.parent}"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            first = (proc.stderr.strip().splitlines() or ["?"])[0]
            return None, f"compiling {source_path.name} failed: {first}"
        os.replace(tmp, target)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"compiling {source_path.name} failed: {exc}"
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target, ""


class CompiledScorer:
    """The C++ stepping action: ``install()`` after the action initialisation, then per event ``reset()`` and
    ``buffer`` (a NumPy view of the C++ array, valid until the next reset)."""

    kind = "compiled C++ stepping action (calosim/geant4/scorer.cc)"

    def __init__(self, library: Path, geometry: Geometry):
        zmax, nx, ny, half = readout(geometry)
        lib = self._lib = ctypes.CDLL(str(library))
        lib.calosim_buffer.restype = ctypes.POINTER(ctypes.c_double)
        lib.calosim_steps.restype = ctypes.c_longlong
        n_layers = len(nx)
        size = lib.calosim_configure(n_layers, (ctypes.c_double * n_layers)(*zmax),
                                     (ctypes.c_int * n_layers)(*nx), (ctypes.c_int * n_layers)(*ny),
                                     ctypes.c_double(half))
        if size < 0:
            raise ValueError("readout too large for scorer.cc")
        self.buffer = np.ctypeslib.as_array(lib.calosim_buffer(), shape=(size,))

    def install(self, g4, run_manager) -> None:
        if self._lib.calosim_install() != 0:
            raise RuntimeError("installing the compiled Geant4 stepping action failed")

    def reset(self) -> None:
        self._lib.calosim_reset()

    @property
    def steps(self) -> int:
        return int(self._lib.calosim_steps())


class PythonScorer:
    """The same readout as a Python G4UserSteppingAction (one Python call per step: about 2x slower)."""

    kind = "Python stepping action (calosim/geant4/scorer.py)"

    def __init__(self, geometry: Geometry):
        zmax, nx, ny, half = readout(geometry)
        self._cell_of = cell_finder(geometry)
        self.buffer = np.zeros(sum(a * b for a, b in zip(nx, ny)) + len(nx))
        self.steps = 0

    def install(self, g4, run_manager) -> None:
        buffer, cell_of, scorer = self.buffer, self._cell_of, self

        class Stepping(g4.G4UserSteppingAction):
            def UserSteppingAction(self, step):
                p = step.GetPreStepPoint().GetPosition()
                buffer[cell_of(p.x, p.y, p.z)] += step.GetTotalEnergyDeposit()
                scorer.steps += 1

        self._action = Stepping()
        run_manager.SetUserAction(self._action)

    def reset(self) -> None:
        self.buffer[:] = 0.0


def make_scorer(library: Path | None, geometry: Geometry):
    return CompiledScorer(library, geometry) if library is not None else PythonScorer(geometry)


def warn_python_scorer(reason: str) -> None:
    warnings.warn(f"using the Python Geant4 stepping action (about 2x slower): {reason}", RuntimeWarning,
                  stacklevel=3)
