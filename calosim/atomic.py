"""One way to write a file that nobody sees half-written: build it under a hidden temporary name in the
target's directory, fsync it, then rename it over the target (and fsync the directory, so the rename itself
survives a crash). Model files, training checkpoints and shower files go through :func:`atomic_h5`, other
files (the ONNX export) through :func:`atomic_bytes`; both through :func:`atomic_path`."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import h5py


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # platforms without directory descriptors
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path) -> Iterator[Path]:
    """``with atomic_path(path) as tmp:`` write the file ``tmp`` (an empty file in the target's directory); on
    leaving the block without an exception it is fsynced and replaces ``path`` (mode 0644), otherwise it is
    removed and ``path`` is untouched."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


@contextlib.contextmanager
def atomic_h5(path, track_order: bool = False) -> Iterator[h5py.File]:
    """``with atomic_h5(path) as f:`` fill the open h5py.File ``f``; published as :func:`atomic_path` does.
    ``track_order``: h5py's creation-order tracking of attributes and members."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w", track_order=track_order) as f:
        yield f


def atomic_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` as :func:`atomic_path` does."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)
