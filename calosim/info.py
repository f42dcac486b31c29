"""What calosim can use on this machine: versions, backends (and why not), threads, GPU devices."""

from __future__ import annotations

import os
import platform
from importlib import metadata

from calosim import __version__
from calosim.backends import backend_status


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cupy_version() -> str:
    for distribution in ("cupy-cuda13x", "cupy-cuda12x", "cupy"):
        version = _version(distribution)
        if version != "not installed":
            return version
    return "not installed"


def _gpu_devices() -> list[str]:
    try:
        import cupy
    except ImportError:
        return []
    try:
        count = cupy.cuda.runtime.getDeviceCount()
        return [cupy.cuda.runtime.getDeviceProperties(i)["name"].decode() for i in range(count)]
    except Exception as exc:  # noqa: BLE001 - any driver failure means "no device", said as such
        return [f"none usable ({exc})"]


def _numba_threads() -> str:
    try:
        import numba
    except ImportError:
        return "-"
    from calosim.backends.numba_backend import _threading_layer_default

    # get_num_threads starts numba's thread pool: choose its layer first, as the numba backend does (asked
    # first, numba took OpenMP, whose spinning threads made batch-1 sampling 4x slower: 8 against 2 ms)
    _threading_layer_default()
    return str(numba.get_num_threads())


def _cpu_model() -> str:
    """The CPU's marketing name where the OS says it (Linux /proc/cpuinfo), else the architecture."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    return {
        "calosim": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "numba_threads": _numba_threads(),
        "versions": {**{d: _version(d) for d in ("numpy", "numba", "h5py", "click")}, "cupy": _cupy_version()},
        "backends": backend_status(),
        "gpu_devices": _gpu_devices(),
    }


def format_info(info: dict) -> str:
    lines = [f"calosim {info['calosim']} on Python {info['python']} ({info['platform']})",
             f"CPU: {info['cpu']}, {info['cpu_count']} cores, numba threads: {info['numba_threads']}",
             "packages: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()),
             "backends:"]
    lines += [f"  {name:<6} {state}" for name, state in info["backends"].items()]
    lines.append("GPU devices: " + (", ".join(info["gpu_devices"]) or "none"))
    return "\n".join(lines)
