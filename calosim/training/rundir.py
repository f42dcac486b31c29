"""A run directory belongs to one run: a lock while a ``train`` works in it, and a resume that continues the
same run or says what differs.

The lock is an advisory ``flock`` on RUN_DIR/.lock, so the operating system releases it when the process dies
(even by SIGKILL): a second ``train`` into the same directory fails at once instead of interleaving log.jsonl and
mixing model files. run.json is written once, when the run starts; a resume compares the model type, config
(all but the number of epochs), seed, validation split, dtype and the training data's content hash with it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from pathlib import Path

from calosim.errors import TrainingError

LOCK = ".lock"
# What a resume must share with the run it continues (run.json keys), and how each is called on the command line.
RESUME_KEYS = {"model_type": "--model-type", "seed": "--seed", "data_sha256": "--data (file contents)",
               "validation_fraction": "--validation-fraction", "dtype": "dtype",
               "sampling_mirror_axes": "--mirror-samples"}


@contextlib.contextmanager
def run_lock(run_dir: Path):
    """Hold RUN_DIR/.lock for the block; TrainingError at once if another process holds it."""
    fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise TrainingError(f"{run_dir} is in use by another calosim train (pid {holder}); wait for it to end "
                                "or choose another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def file_sha256(path, block: int = 1 << 22) -> str:
    """SHA-256 of a file's bytes (hex), read in 4 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def _config_without_epochs(config: dict) -> dict:
    """A config dict with every ``epochs`` field removed (flat or inside a group): the one thing a resume may
    change."""
    return {k: _config_without_epochs(v) if isinstance(v, dict) else v for k, v in config.items() if k != "epochs"}


def check_resume(run_json: Path, options: dict) -> None:
    """TrainingError naming every difference between the stored run (run.json) and this invocation's options."""
    try:
        stored = json.loads(run_json.read_text())
    except (OSError, ValueError) as exc:
        raise TrainingError(f"{run_json}: cannot read the run's options ({exc}); cannot resume") from None
    differences = []
    for key, flag in RESUME_KEYS.items():
        if key in stored and stored[key] != options[key]:
            before, now = stored[key], options[key]
            if key == "data_sha256":
                before, now = f"{stored.get('data')} sha256 {before[:12]}", f"{options['data']} sha256 {now[:12]}"
            differences.append(f"{flag} {before} (run) vs {now} (now)")
    if "config" in stored and _config_without_epochs(stored["config"]) != _config_without_epochs(options["config"]):
        differences.append("the config (--config, --config-file, --batch-size, --energy-range)")
    if differences:
        raise TrainingError(f"{run_json.parent}: --resume continues the same run, but " + "; ".join(differences)
                            + " differ")
