"""1 against 2 processes on this machine, in one run, and what N nodes would give: the numbers behind the
README's "Beyond one machine".

    python bench/scaleout.py WORKDIR [--quick] > scaleout.json      # ~5 minutes on 2 cores (--quick: ~2)

Measured here (every workload 1 and 2 processes, one after the other in this one run; a shared machine drifts by
tens of percent between runs minutes apart, so read the ratios, which are measured back to back):

- generation: `calosim generate` of CaloGAN small (untrained weights: the speed does not depend on them), numba,
  one process (its default threads), and --dask local:1 / local:2 (single-threaded workers); showers/s of the
  whole command's wall time (cluster start, model load, combine included) and of the generator passes alone.
- Geant4: 40 e+ showers of 1-100 GeV (approximate data sets), --workers 1 / 2 of the process pool, and
  --dask local:2; showers/s of wall time and per core of Geant4's own time.
- training: `mpiexec -n 1` / `-n 2` `calosim train --distributed` of CaloGAN small and VAE small at global batch
  128 (numba, one thread per rank, so 2 ranks use the 2 cores); steps/s of the second epoch (the first compiles).
- gradient bytes per training step of every model configuration (counted in Adam's reducer: one allreduce per
  optimiser step, float32).

Scaling model (data-parallel training, K nodes, ring allreduce, no overlap of compute and communication):
t_comm(K) = 2 (K - 1) / K * bytes / bandwidth + 2 (K - 1) * latency; fixed global batch: t_compute(K) = t_1 / K;
efficiency = t_compute / (t_compute + t_comm). Bandwidths: 10 Gb/s Ethernet (latency 50 us) and 100 Gb/s
InfiniBand (latency 2 us). t_1 is the step time measured here with one process using both cores (a node of this
kind); a node with more cores is faster per step and scales worse, which the model shows by scaling t_1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BIN = Path(sys.executable).parent
ONE_THREAD = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "MKL_NUM_THREADS": "1"}
NETWORKS = {"10 Gb/s Ethernet": (10e9 / 8, 50e-6), "100 Gb/s InfiniBand": (100e9 / 8, 2e-6)}
# The paper's CaloGAN (29.7M + 2.7M parameters) is not timed here (minutes per epoch): its step time at batch 128 on
# this 2-core CPU, 0.6-0.8 s, is issue 18's measurement; the scaling model uses 0.7 s.
PAPER_CALOGAN_STEP_SECONDS = 0.7
CONFIGS = [("calogan", "small"), ("calogan", "calogan"), ("wgan-gp", "small"), ("wgan-gp", "fastcalogan"),
           ("vae", "small"), ("vae", "vae")]


def calosim(*args, env=None, ranks=None, cwd=None) -> float:
    """Run `calosim ARGS` (under mpiexec -n ranks when given); its wall seconds."""
    command = [str(BIN / "calosim"), *map(str, args)]
    if ranks is not None:
        command = [str(BIN / "mpiexec"), "-n", str(ranks), *command]
    t0 = time.perf_counter()
    subprocess.run(command, check=True, cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def prepare(work: Path) -> None:
    from calosim.backends import get_backend
    from calosim.data.bundled import bundled_path
    from calosim.data.formats import read_showers, write_showers
    from calosim.geometry import calogan_geometry
    from calosim.models import registry
    from calosim.models.files import save_model

    work.mkdir(parents=True, exist_ok=True)
    write_showers(work / "eplus1k.h5", read_showers(bundled_path("eplus"), 0, 1024), seed=0, producer="scaleout")
    write_showers(work / "eplus64.h5", read_showers(bundled_path("eplus"), 0, 64), seed=0, producer="scaleout")
    kind = registry.get_model_type("calogan")
    model = kind.build(kind.get_config("small"), calogan_geometry(), get_backend("numba"),
                       np.random.default_rng(0), particle="e+", energy_range=(1.0, 100.0))
    save_model(work / "calogan-small.h5", model)


def bench_generation(work: Path, n: int) -> dict:
    out = {}
    runs = {"1 process (2 threads)": [], "dask local:1": ["--dask", "local:1"], "dask local:2": ["--dask", "local:2"]}
    calosim("generate", "--model", "calogan-small.h5", "-n", "200", "-o", "warm.h5", "--force", cwd=work)  # JIT cache
    for name, extra in runs.items():
        seconds = calosim("generate", "--model", "calogan-small.h5", "-n", n, "--shard-size", n // 6, "--seed", 1,
                          "-o", "gen.h5", "--force", *extra, cwd=work)
        (work / "gen.h5").unlink()
        out[name] = {"showers": n, "seconds": round(seconds, 2), "showers_per_s": round(n / seconds, 1)}
    return out


def bench_geant4(work: Path, n: int) -> dict:
    out = {}
    runs = {"--workers 1": ["--workers", "1"], "--workers 2": ["--workers", "2"],
            "dask local:2": ["--dask", "local:2", "--shard-size", str(n // 8)]}
    import h5py

    for name, extra in runs.items():
        seconds = calosim("simulate", "--engine", "geant4", "--approximate-data", "--particle", "eplus", "-n", n,
                          "--seed", 3, "-o", "g4.h5", "--force", *extra, cwd=work)
        with h5py.File(work / "g4.h5", "r") as f:
            ms = float(f.attrs["ms_per_shower"])
        (work / "g4.h5").unlink()
        out[name] = {"showers": n, "seconds": round(seconds, 2), "showers_per_s": round(n / seconds, 2),
                     "geant4_ms_per_shower": round(ms, 1)}
    return out


def bench_training(work: Path, epochs: int) -> dict:
    out = {}
    for model_type in ("calogan", "vae"):
        for ranks, env in ((1, {}), (1, ONE_THREAD), (2, ONE_THREAD)):
            name = f"{model_type} small, mpiexec -n {ranks}" + (", 1 thread" if env else ", 2 threads")
            run = work / "runs" / name.replace(" ", "_").replace(",", "")
            subprocess.run(["rm", "-rf", str(run)], check=True)
            calosim("train", "--distributed", "--model-type", model_type, "--config", "small", "--data", "eplus1k.h5",
                    "--batch-size", 128, "--epochs", epochs, "--validation-fraction", 0, "--no-mirror", "--out", run,
                    env=env, ranks=ranks, cwd=work)
            log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
            last = log[-1]  # the first epoch compiles
            out[name] = {"steps": last["steps"], "seconds": round(last["seconds"], 2),
                         "steps_per_s": round(last["steps"] / last["seconds"], 3)}
    return out


class CountingParallel:
    """Stands in for DataParallel with one rank, counting the bytes Adam's reducer would allreduce."""

    rank, size, is_root = 0, 1, True

    def __init__(self):
        self.bytes = 0

    def attach_backend(self, backend): ...

    def local_rows(self, global_batch):
        return slice(0, global_batch)

    def average_gradients(self, grads):
        self.bytes += sum(int(g.nbytes) for g in grads)
        return grads

    def mean_over_ranks(self, values):
        return values

    def barrier(self): ...


def gradient_bytes(work: Path) -> dict:
    """Bytes allreduced per training step (the mean over 2 steps at batch 32) and parameters, per config."""
    from calosim.training import train

    out = {}
    for model_type, config in CONFIGS:
        counter = CountingParallel()
        run = work / "runs" / f"bytes-{model_type}-{config}"
        subprocess.run(["rm", "-rf", str(run)], check=True)
        result = train(run, data=work / "eplus64.h5", backend="numba", config=config, epochs=1, batch_size=32,
                       validation_fraction=0.0, model_type=model_type, parallel=counter)
        steps = result.history[-1]["steps"]
        out[f"{model_type} {config}"] = {"bytes_per_step": counter.bytes // steps,
                                         "MB_per_step": round(counter.bytes / steps / 1e6, 2)}
    return out


def scaling_model(step_seconds: float, bytes_per_step: int) -> dict:
    table = {}
    for network, (bandwidth, latency) in NETWORKS.items():
        rows = {}
        for k in (2, 4, 8, 16, 32, 64):
            comm = 2 * (k - 1) / k * bytes_per_step / bandwidth + 2 * (k - 1) * latency
            compute = step_seconds / k
            rows[k] = {"allreduce_ms": round(1e3 * comm, 2), "compute_ms": round(1e3 * compute, 1),
                       "efficiency": round(compute / (compute + comm), 3),
                       "speedup": round(step_seconds / (compute + comm), 1)}
        table[network] = rows
    return table


def main() -> None:
    work = Path(sys.argv[1]).resolve()
    quick = "--quick" in sys.argv
    prepare(work)
    result = {"machine": f"{os.cpu_count()} cores (shared: compare ratios within this run only)",
              "gradient_bytes": gradient_bytes(work)}
    result["generation"] = bench_generation(work, 6000 if quick else 24000)
    result["geant4"] = bench_geant4(work, 16 if quick else 40)
    result["training"] = bench_training(work, 2)
    small_step = 1.0 / result["training"]["calogan small, mpiexec -n 1, 2 threads"]["steps_per_s"]
    model = {}
    for name, step in (("calogan small", small_step), ("calogan calogan", PAPER_CALOGAN_STEP_SECONDS)):
        size = result["gradient_bytes"][name]["bytes_per_step"]
        model[name] = {"node_step_seconds": round(step, 3), "bytes_per_step": size,
                       "fixed_global_batch_128": scaling_model(step, size)}
    result["scaling_model"] = model
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
