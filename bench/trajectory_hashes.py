"""Fingerprints of short training runs and generated files, to show that a refactor changes no number.

    python bench/trajectory_hashes.py WORKDIR > hashes.json      # before the change
    python bench/trajectory_hashes.py WORKDIR > after.json       # after it, same machine, same WORKDIR
    diff hashes.json after.json

Every model type trains for a few steps through the command line (``calosim train``, so the loop, the
checkpoints and validation are covered), then generates through ``calosim generate``. Recorded per run: a hash
of every array of checkpoint.h5 (weights, BatchNorm statistics, Adam moments), of the RNG states, the per-epoch
losses and validation scores, and the SHA-256 of the generated file's bytes and of its arrays alone. The
numbers depend on the CPU's rounding: compare runs of one machine only. Training runs without the mirror
augmentation (--no-mirror), and the RNG fingerprint covers the noise, shuffle and Dropout streams, so that the
fingerprints stay comparable with those taken before the augmentation existed. About two minutes on 2 cores.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

RUNS = {  # name: (model type, config, data, extra train options, epochs)
    "calogan-small": ("calogan", "small", "eplus", [], 2),
    "calogan-calogan": ("calogan", "calogan", "eplus320", ["--batch-size", "128"], 1),
    "wgan-gp-small": ("wgan-gp", "small", "eplus", [], 2),
    "vae-small": ("vae", "small", "eplus", [], 2),
    "vae-small-challenge": ("vae", "small", "challenge", [], 1),
    "lagan-small-2class": ("lagan", "small", "jets", ["--config-file", "two_classes.json"], 2),
}


def calosim(*args: str, cwd: Path) -> None:
    subprocess.run([str(Path(sys.executable).parent / "calosim"), *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL)


def arrays_digest(path: Path, skip=()) -> str:
    h = hashlib.sha256()
    with h5py.File(path, "r") as f:
        names = []
        f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
        for name in sorted(names):
            if any(name.startswith(s) for s in skip):
                continue
            h.update(name.encode())
            h.update(np.ascontiguousarray(f[name][()]).tobytes())
    return h.hexdigest()[:16]


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def prepare_data(work: Path) -> None:
    from calosim.data.bundled import bundled_path
    from calosim.data.formats import convert, read_showers, write_showers

    work.mkdir(parents=True, exist_ok=True)
    eplus = read_showers(bundled_path("eplus"), 0, 800)
    write_showers(work / "eplus.h5", eplus, seed=0, producer="trajectory_hashes")
    write_showers(work / "eplus320.h5", read_showers(work / "eplus.h5", 0, 320), seed=0, producer="trajectory_hashes")
    convert(work / "eplus.h5", work / "challenge.h5", "calochallenge")
    rng = np.random.default_rng(0)
    n = 300
    images = rng.exponential(1.0, (n, 25, 25)) * (rng.random((n, 25, 25)) < 0.2)
    images[:, 12, 12] += 50.0
    with h5py.File(work / "jets.h5", "w") as f:
        f.create_dataset("image", data=images.astype(np.float32))
        f.create_dataset("y", data=(np.arange(n) % 2).astype(np.float64))
    (work / "two_classes.json").write_text(json.dumps({"n_classes": 2, "batch_size": 20}))


def run(work: Path, name: str) -> dict:
    model_type, config, data, extra, epochs = RUNS[name]
    out = work / "runs" / name
    if out.exists():
        subprocess.run(["rm", "-rf", str(out)], check=True)
    calosim("train", "--model-type", model_type, "--config", config, "--data", f"{data}.h5", "--epochs", str(epochs),
            "--seed", "0", "--out", str(out.relative_to(work)), "--no-mirror", *extra, cwd=work)
    # values fitted from the data (/fitted) are compared on their own: older files kept them in the config
    record: dict = {"checkpoint_arrays": arrays_digest(out / "checkpoint.h5", skip=("fitted",))}
    with h5py.File(out / "checkpoint.h5", "r") as f:
        state = json.loads(f.attrs["trainer_state"])
    streams = {k: state["rng"][k] for k in ("noise", "shuffle", "dropout")}
    record["rng"] = hashlib.sha256(json.dumps(streams, sort_keys=True).encode()).hexdigest()[:16]
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    record["log"] = [{k: v for k, v in r.items() if k != "seconds"} for r in log]
    for weights in ("trained", "initial"):
        gen = work / f"{name}-{weights}.h5"
        extra_gen = ["--initial-weights"] if weights == "initial" else []
        gen.unlink(missing_ok=True)  # an existing output is never replaced without --force
        calosim("generate", "--model", str(out.relative_to(work)), "-n", "1500", "--batch-size", "500", "--seed", "3",
                *extra_gen, "-o", gen.name, cwd=work)
        record[f"generated_{weights}_bytes"] = file_digest(gen)
        record[f"generated_{weights}_arrays"] = arrays_digest(gen)
    return record


def main() -> None:
    work = Path(sys.argv[1]).resolve()
    names = sys.argv[2:] or list(RUNS)
    prepare_data(work)
    json.dump({name: run(work, name) for name in names}, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
