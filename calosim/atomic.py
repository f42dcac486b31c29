"""One way to write a file that nobody sees half-written: build it under a hidden temporary name in the
target's directory, fsync it, then rename it over the target (and fsync the directory, so the rename itself
survives a crash). Model files, training checkpoints and shower files all go through :func:`atomic_h5`, other
files (the ONNX export) through :func:`atomic_bytes`.

What may be published is checked before the rename (:func:`require_finite`: the writers call it on every
array they write, so a NaN never reaches a file under its name). SIGTERM (a batch system's end of slot) is
turned into :class:`Terminated`, which unwinds like Ctrl-C: the temporary file is removed and the previous
file of that name stays intact. A SIGKILLed writer cannot clean up: its temporary names carry its pid, and the
next write into the same directory removes the temporaries of writers that are no longer alive.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np

from calosim.errors import DataError

TEMP_PATTERN = re.compile(r"^\..+\.pid(\d+)\.[A-Za-z0-9_]+\.tmp$")


class Terminated(BaseException):
    """The process received SIGTERM; raised where it was, so every ``with`` block cleans up on the way out."""


def _raise_terminated(signum, frame):
    raise Terminated(f"stopped by signal {signal.Signals(signum).name}")


def install_sigterm_cleanup() -> None:
    """Make SIGTERM unwind the stack (as SIGINT's KeyboardInterrupt does), so temporaries are removed; only
    from the main thread, and only over the default handler (a caller's own handler is kept)."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_terminated)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def sweep_stale_temporaries(directory) -> list[Path]:
    """Remove the temporary files of writers (this machine's pids) that died before renaming them; returns
    what was removed. Temporaries of live processes, and files of other names, are left alone."""
    removed = []
    try:
        entries = list(Path(directory).iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = TEMP_PATTERN.match(entry.name)
        if match is None or int(match.group(1)) == os.getpid() or _pid_alive(int(match.group(1))):
            continue
        with contextlib.suppress(OSError):
            entry.unlink()
            removed.append(entry)
    return removed


def require_finite(array, what: str, source, nonnegative: bool = False, row_offset: int | None = None) -> None:
    """Raise DataError naming ``source`` and ``what`` when ``array`` holds NaN or infinite values (or, with
    ``nonnegative``, negative ones); with ``row_offset`` the message names the first bad row (axis 0)."""
    a = np.asarray(array)
    if a.dtype.kind not in "fc" and not nonnegative:
        return
    bad = ~np.isfinite(a)
    problem = "NaN or infinite values"
    if not bad.any() and nonnegative:
        bad, problem = a < 0, "negative values"
    if not bad.any():
        return
    where = ""
    if row_offset is not None and a.ndim >= 1:
        row = int(np.nonzero(bad.reshape(len(a), -1).any(axis=1))[0][0]) + row_offset
        where = f" (first in row {row})"
    raise DataError(f"{source}: refusing to write {what}: it holds {problem}{where}; nothing was written")


def _start_write(path) -> tuple[Path, Path, Path]:
    """(target, its directory, a new temporary beside it), after the SIGTERM cleanup is in place and the
    directory's stale temporaries are gone."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    install_sigterm_cleanup()
    sweep_stale_temporaries(directory)
    try:
        return path, directory, _temporary_name(directory, path.name)
    except OSError as exc:  # a read-only or missing directory
        raise DataError(f"{path}: cannot write in {directory}: {os_error_text(exc)}") from None


@contextlib.contextmanager
def atomic_h5(path, track_order: bool = False) -> Iterator[h5py.File]:
    """``with atomic_h5(path) as f:`` fill the open h5py.File ``f``; on leaving the block without an exception
    the file replaces ``path`` (mode 0644), otherwise the temporary file is removed and ``path`` is untouched.
    ``track_order``: h5py's creation-order tracking of attributes and members."""
    path, directory, tmp = _start_write(path)
    f = fd = None
    try:
        f = h5py.File(tmp, "w", track_order=track_order)
        fd = f.id.get_vfd_handle()
        yield f
        _close(f)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:  # a full disk, a vanished directory: say so in one line, nothing left behind
        _discard(f, fd, tmp)
        raise DataError(f"{path}: cannot write: {os_error_text(exc)}; nothing was written") from None
    except BaseException:
        _discard(f, fd, tmp)
        raise
    _fsync_directory(directory)


def atomic_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` as :func:`atomic_h5` writes an HDF5 file (a temporary beside it, fsync,
    rename; one line and nothing left behind on failure)."""
    path, directory, tmp = _start_write(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise DataError(f"{path}: cannot write: {os_error_text(exc)}; nothing was written") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)
    return path


def _close(f: h5py.File) -> None:
    """Flush HDF5's caches, then close. A write error shows in the flush, while the file can still be discarded
    (a second close of a file whose first close failed crashes HDF5); HDF5 reports some as RuntimeError naming
    the errno: those become OSError."""
    try:
        f.flush()
        f.close()
    except RuntimeError as exc:
        match = re.search(r"errno = (\d+)", str(exc))
        raise OSError(int(match.group(1)) if match else errno.EIO, str(exc)) from None


def os_error_text(exc: OSError) -> str:
    """The cause of an OSError in a few words ("No space left on device"), without HDF5's multi-line detail."""
    if exc.errno:
        return os.strerror(exc.errno)
    return " ".join(str(exc).split())


def _temporary_name(directory: Path, name: str) -> Path:
    """A new hidden name beside the target that says whose it is (the pid, for the stale sweep)."""
    for _ in range(100):
        tmp = directory / f".{name}.pid{os.getpid()}.{os.urandom(4).hex()}.tmp"
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{directory}: cannot find a free temporary name for {name}")


def _discard(f, fd, tmp: Path) -> None:
    """Close and remove an unfinished temporary file. HDF5 flushes its caches when it closes a file, which fails
    again on a full disk, and a file it could not close it tries to flush at interpreter exit (a segfault): so
    its descriptor ``fd`` is pointed at /dev/null first, and the flush of data nobody wants succeeds."""
    if fd is not None:
        with contextlib.suppress(OSError):
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, fd)
            os.close(null)
    if f is not None:
        with contextlib.suppress(Exception):
            f.close()
    with contextlib.suppress(OSError):
        os.unlink(tmp)


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
