"""Kill a training run at random moments, resume it, and check it ends with the weights of an uninterrupted run.

    python bench/kill_resume.py WORKDIR [--kills 8] [--epochs 6] [--seed 1]

One uninterrupted run (calogan small, 256 training showers of the bundled e+, batch 128, numpy backend), then the
same run started with ``--resume`` again and again, each try sent SIGTERM or SIGKILL (chosen at random) after a
random delay, until a try finishes. Printed as JSON: every kill (signal, delay, epochs done, exit code,
temporaries left right after it), the temporaries left at the end, and whether checkpoint.h5 and last.h5 hold the
same arrays as the uninterrupted run's. After a SIGKILL a temporary may stay until the next command, which must
remove it; after SIGTERM none may stay.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

CALOSIM = [sys.executable, "-c", "from calosim.cli.main import main; main()"]


def arrays_digest(path: Path) -> str:
    h = hashlib.sha256()
    with h5py.File(path, "r") as f:
        names = []
        f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
        for name in sorted(names):
            h.update(name.encode())
            h.update(np.ascontiguousarray(f[name][()]).tobytes())
    return h.hexdigest()[:16]


def temporaries(directory: Path) -> list[str]:
    return sorted(n for n in os.listdir(directory) if n.endswith(".tmp")) if directory.is_dir() else []


def epochs_done(run: Path) -> int:
    log = run / "log.jsonl"
    return len(log.read_text().splitlines()) if log.is_file() else 0


def train_args(data: Path, run: Path, epochs: int) -> list[str]:
    return [*CALOSIM, "train", "--data", str(data), "--out", str(run), "--epochs", str(epochs), "--batch-size", "128",
            "--backend", "numpy", "--seed", "0", "--resume"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--kills", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    from calosim.data.bundled import bundled_path
    from calosim.data.formats import read_showers, write_showers

    data = work / "d.h5"
    if not data.exists():
        write_showers(data, read_showers(bundled_path("eplus"), 0, 320), seed=0)
    reference, interrupted = work / "reference", work / "interrupted"
    for run in (reference, interrupted):
        subprocess.run(["rm", "-rf", str(run)], check=True)
    t0 = time.perf_counter()
    subprocess.run(train_args(data, reference, args.epochs), check=True, capture_output=True)
    epoch_s = (time.perf_counter() - t0) / args.epochs  # to spread the kills over the run, not a measurement

    rng = random.Random(args.seed)
    kills = []
    while True:
        proc = subprocess.Popen(train_args(data, interrupted, args.epochs), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        sig, delay = None, None
        if len(kills) < args.kills:
            delay = rng.uniform(0.3, 2.5 * epoch_s)
            sig = rng.choice([signal.SIGTERM, signal.SIGKILL])
            try:
                proc.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                proc.send_signal(sig)
        _, err = proc.communicate()
        if proc.returncode == 0:
            break
        if sig is None:
            raise SystemExit(f"the run failed without a kill: {err.strip()}")
        kills.append({"signal": sig.name, "delay_s": round(delay, 2), "rc": proc.returncode,
                      "epochs_done": epochs_done(interrupted), "temporaries_after": temporaries(interrupted),
                      "stderr_last_line": (err.strip().splitlines() or [""])[-1][:160]})
    result = {
        "kills": kills,
        "temporaries_at_end": temporaries(interrupted),
        "checkpoint_same": arrays_digest(reference / "checkpoint.h5") == arrays_digest(interrupted / "checkpoint.h5"),
        "last_same": arrays_digest(reference / "last.h5") == arrays_digest(interrupted / "last.h5"),
        "log_losses_same": [{k: v for k, v in json.loads(line).items() if k != "seconds"}
                            for line in (reference / "log.jsonl").read_text().splitlines()]
        == [{k: v for k, v in json.loads(line).items() if k != "seconds"}
            for line in (interrupted / "log.jsonl").read_text().splitlines()],
    }
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
