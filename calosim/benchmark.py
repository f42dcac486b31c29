"""Throughput measurement for users (`calosim bench`) and for bench/: ms per shower, achieved GFLOP/s, and the
machine's own matrix-multiply throughput on the same shapes, measured in the same run.

Compare ratios, not absolute times: a shared machine is noisy, but two numbers taken side by side in one
run share the noise.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np


def best_time(fn: Callable[[], object], synchronize: Callable[[], None], min_seconds: float = 0.3,
              min_repeats: int = 3, max_repeats: int = 1000) -> float:
    """The fastest of repeated calls of ``fn`` (seconds), after one warm-up call (compilation, caches)."""
    fn()
    synchronize()
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < min_repeats or (time.perf_counter() - started < min_seconds and len(times) < max_repeats):
        t0 = time.perf_counter()
        fn()
        synchronize()
        times.append(time.perf_counter() - t0)
    return min(times)


def gemm_seconds(backend, shapes: list[tuple[int, int, int, int]], rng: np.random.Generator,
                 min_seconds: float = 0.3) -> float:
    """Time of plain matrix products with the given (count, M, K, N) shapes, one after another."""
    operands = []
    for count, m, k, n in shapes:
        a = backend.asarray(rng.standard_normal((count, m, k) if count > 1 else (m, k)))
        b = backend.asarray(rng.standard_normal((count, k, n) if count > 1 else (k, n)))
        operands.append((a, b))

    def run():
        for a, b in operands:
            backend.matmul(a, b)

    return best_time(run, backend.synchronize, min_seconds=min_seconds)


@dataclass
class BenchRow:
    batch_size: int
    ms_per_shower: float
    showers_per_s: float
    gflops: float  # FLOPs executed per second (counted from the products the sampling path runs)
    gemm_gflops: float  # plain matrix products of the same shapes, same run
    ratio_to_gemm: float
    model_gflops: float  # the trained model's nominal FLOPs (its layers, unfolded) per second

    def to_dict(self) -> dict:
        return asdict(self)


def bench_generation(generate: Callable[[int], object], flops: Callable[[int], int],
                     gemm_shapes: Callable[[int], list], backend, batch_sizes, seed: int = 0,
                     min_seconds: float = 0.3, model_flops: Callable[[int], int] | None = None) -> list[BenchRow]:
    """Measure ``generate(batch)`` for each batch size beside the GEMMs of the same shapes.

    ``flops`` and ``gemm_shapes`` describe the work actually executed; ``model_flops`` (default ``flops``)
    the model's nominal work, which an exact fold at load time may reduce."""
    model_flops = model_flops or flops
    rng = np.random.default_rng(seed)
    rows = []
    for batch in batch_sizes:
        seconds = best_time(lambda b=batch: generate(b), backend.synchronize, min_seconds=min_seconds)
        gemm = gemm_seconds(backend, gemm_shapes(batch), rng, min_seconds=min_seconds)
        work = flops(batch)
        rows.append(BenchRow(
            batch_size=int(batch),
            ms_per_shower=1e3 * seconds / batch,
            showers_per_s=batch / seconds,
            gflops=work / seconds / 1e9,
            gemm_gflops=work / gemm / 1e9,
            ratio_to_gemm=gemm / seconds,
            model_gflops=model_flops(batch) / seconds / 1e9,
        ))
    return rows


def format_rows(rows: list[BenchRow]) -> str:
    lines = [f"{'batch':>6}  {'ms/shower':>10}  {'showers/s':>10}  {'GFLOP/s':>8}  {'GEMM GFLOP/s':>12}  {'ratio':>6}"
             f"  {'model GFLOP/s':>13}"]
    for r in rows:
        lines.append(f"{r.batch_size:>6}  {r.ms_per_shower:>10.4f}  {r.showers_per_s:>10.1f}  {r.gflops:>8.1f}  "
                     f"{r.gemm_gflops:>12.1f}  {r.ratio_to_gemm:>6.2f}  {r.model_gflops:>13.1f}")
    return "\n".join(lines)


def _bench_model(config: str | None, backend_name: str, model_path=None, seed: int = 0, model_type: str = "calogan"):
    """A model on ``backend_name``: the trained one in ``model_path`` (of any type), or a fresh one of
    ``model_type`` and its ``config`` (default: the type's published ``reference_config``) in the type's
    default geometry; timing does not depend on the weights."""
    from calosim.backends import get_backend
    from calosim.models import registry
    from calosim.models.files import load_model
    from calosim.training import resolve_model_path

    backend = get_backend(backend_name)
    if model_path is not None:
        return load_model(resolve_model_path(model_path), backend)
    kind = registry.get_model_type(model_type)
    cfg = kind.get_config(config or kind.reference_config)
    return kind.build(cfg, kind.default_geometry(), backend, np.random.default_rng(seed))


def generation_timer(model):
    """(sample(energy, rng), flops(batch), gemm_shapes(batch), model_flops(batch)) of a model's sampling path
    (ShowerModel.sample after freeze(): CaloGAN's folded generator, another type's generating network)."""
    model = model.freeze()
    return model.sample, model.sampling_flops, model.sampling_gemm_shapes, model.nominal_sampling_flops


def bench_generator(config: str | None = None, backend_name: str = "numba", batch_sizes=(1, 128, 1024),
                    model_path=None, seed: int = 0, min_seconds: float = 0.3,
                    model_type: str = "calogan") -> list[BenchRow]:
    """ms/shower of the sampling path (inference mode, latent draws included) per batch size, beside the GEMMs
    of its own shapes."""
    model = _bench_model(config, backend_name, model_path, seed, model_type)
    sample, flops, gemm_shapes, model_flops = generation_timer(model)
    rng = np.random.default_rng(seed)
    energy = rng.uniform(1.0, 100.0, size=max(batch_sizes))
    return bench_generation(lambda b: sample(energy[:b], rng), flops, gemm_shapes, model.backend, batch_sizes,
                            seed=seed, min_seconds=min_seconds, model_flops=model_flops)


def step_gemm_seconds(backend, shapes, rng: np.random.Generator, min_seconds: float = 0.05) -> float:
    """Time of plain matrix products of the given shapes (each distinct shape timed once, times its count)."""
    from collections import Counter

    return sum(times * gemm_seconds(backend, [shape], rng, min_seconds=min_seconds)
               for shape, times in Counter(shapes).items())


def bench_train_step(config: str | None = None, backend_name: str = "numba", batch_size: int = 128, seed: int = 0,
                     min_seconds: float = 1.0, model_type: str = "calogan") -> dict:
    """Seconds of one training step of the model type's trainer (CaloGAN: D real, D fake, G twice) at
    ``batch_size``, on random showers, with the FLOPs of its matrix products (where the trainer counts them:
    ``step_products``) and the time plain matrix products of the same shapes take on the same backend in the
    same run (``gemm_seconds``; ``ratio_to_gemm`` = gemm_seconds / seconds_per_step)."""
    model = _bench_model(config, backend_name, None, seed, model_type)
    backend = model.backend
    rng = np.random.default_rng(seed)
    energy = rng.uniform(1.0, 100.0, size=batch_size)
    layers = [rng.exponential(10.0, size=(batch_size, *shape)) * (rng.random((batch_size, *shape)) < 0.5)
              for shape in model.geometry.shapes]
    labels = rng.integers(0, model.n_classes, size=batch_size)
    trainer = model.trainer(rng)
    seconds = best_time(lambda: trainer.train_step(layers, energy, labels), backend.synchronize,
                        min_seconds=min_seconds, min_repeats=2)
    report = {"model_type": model.model_type, "config": model.config.name, "backend": backend_name,
              "batch_size": batch_size, "seconds_per_step": seconds}
    shapes = trainer.step_products(batch_size)
    if shapes:
        flops = sum(2 * count * m * k * n for count, m, k, n in shapes)
        gemm = step_gemm_seconds(backend, shapes, rng)
        report.update(gflop_per_step=flops / 1e9, gflops=flops / seconds / 1e9, gemm_seconds=gemm,
                      gemm_gflops=flops / gemm / 1e9, ratio_to_gemm=gemm / seconds)
    return report


def bench_vs_geant4(config: str | None = None, backend_name: str = "numba", energies=(1.0, 10.0, 50.0, 100.0),
                    geant4_showers: int = 20, model_path=None, batch_size: int = 1024, seed: int = 0,
                    model_type: str = "calogan") -> list[dict]:
    """Geant4 (one core) and calosim generation at the same fixed e+ energies, timed in one run."""
    from calosim.geant4.speed import time_geant4

    model = _bench_model(config, backend_name, model_path, seed, model_type)
    sample = generation_timer(model)[0]
    backend = model.backend
    rng = np.random.default_rng(seed)
    geant4_ms = time_geant4("eplus", energies, geant4_showers, seed)
    rows = []
    for e in energies:
        energy = np.full(batch_size, float(e))
        seconds = best_time(lambda energy=energy: sample(energy, rng), backend.synchronize)
        ms = 1e3 * seconds / batch_size
        rows.append({"energy_gev": float(e), "geant4_ms_per_shower": geant4_ms[float(e)],
                     "calosim_ms_per_shower": ms, "speedup": geant4_ms[float(e)] / ms})
    return rows


def bench_fastsim_vs_geant4(fastsim_model, energies=(1.0, 10.0, 50.0, 100.0), geant4_showers: int = 20,
                            seed: int = 0, threshold_gev: float | None = None) -> list[dict]:
    """Full Geant4 and Geant4 with ``fastsim_model`` as its fast simulation (calosim.fastsim), e+ at the same
    fixed energies and Geant4 seeds, timed per event in one run (one worker process each, one after the other):
    rows of energy_gev, geant4_ms_per_event, fastsim_ms_per_event, speedup and fastsim_fraction (share of the
    events the model took over; the others fell outside its training range or below the threshold)."""
    from calosim.fastsim import fastsim_settings
    from calosim.geant4.speed import time_geant4

    settings = fastsim_settings(fastsim_model, threshold_gev)
    full = time_geant4("eplus", energies, geant4_showers, seed, details=True)
    fast = time_geant4("eplus", energies, geant4_showers, seed, details=True, fastsim=settings)
    return [{"energy_gev": float(e), "geant4_ms_per_event": full[float(e)]["ms"],
             "fastsim_ms_per_event": fast[float(e)]["ms"], "speedup": full[float(e)]["ms"] / fast[float(e)]["ms"],
             "fastsim_fraction": fast[float(e)]["fastsim_fraction"], "events": full[float(e)]["n"]}
            for e in energies]


def bench_report(config: str | None = None, backend_name: str = "numba", batch_sizes=(1, 128, 1024),
                 model_path=None, train_step: bool = False, vs_geant4: bool = False, geant4_showers: int = 20,
                 seed: int = 0, model_type: str = "calogan", fastsim_model=None) -> dict:
    """Everything `calosim bench` prints, as one JSON-able dict (with the machine it ran on). model_type and
    config choose a fresh model (config None: the type's published ``reference_config``); model_path a trained
    model file of any type. With ``fastsim_model`` and ``vs_geant4``: also Geant4 with that model as its fast
    simulation beside full Geant4 (bench_fastsim_vs_geant4)."""
    from calosim.info import machine_info
    from calosim.models import registry
    from calosim.models.files import read_model_header
    from calosim.training import resolve_model_path

    if model_path is not None:
        model_path = resolve_model_path(model_path)  # a file, a run directory or a pretrained name
        model_type = read_model_header(model_path)["model"]
    config = config or registry.get_model_type(model_type).reference_config
    rows = bench_generator(config, backend_name, batch_sizes, model_path, seed, model_type=model_type)
    report = {"model_type": model_type, "config": config, "backend": backend_name,
              "model": str(model_path) if model_path else None, "machine": machine_info(),
              "generation": [r.to_dict() for r in rows]}
    if train_step:
        report["train_step"] = bench_train_step(config, backend_name, 128, seed, model_type=model_type)
    if vs_geant4:
        report["vs_geant4"] = bench_vs_geant4(config, backend_name, geant4_showers=geant4_showers,
                                              model_path=model_path, seed=seed, model_type=model_type)
        if fastsim_model is not None:
            report["fastsim_model"] = str(fastsim_model)
            report["vs_geant4_fastsim"] = bench_fastsim_vs_geant4(fastsim_model, geant4_showers=geant4_showers,
                                                                  seed=seed)
    return report


def format_report(report: dict) -> str:
    m = report["machine"]
    what = report["model"] or f"{report.get('model_type', 'calogan')} {report['config'] or '(default config)'}"
    lines = [f"calosim bench: {what} on {report['backend']} "
             f"({m['cpu']}, {m['cpu_count']} cores, numba threads {m['numba_threads']}; GPU: "
             f"{', '.join(m['gpu_devices']) or 'none'})",
             format_rows([BenchRow(**r) for r in report["generation"]])]
    if "train_step" in report:
        t = report["train_step"]
        line = f"training step at batch {t['batch_size']}: {t['seconds_per_step']:.3f} s"
        if "gflops" in t:
            line += (f", {t['gflop_per_step']:.1f} GFLOP ({t['gflops']:.1f} GFLOP/s); GEMMs of the same shapes "
                     f"{t['gemm_seconds']:.3f} s ({t['gemm_gflops']:.1f} GFLOP/s), ratio {t['ratio_to_gemm']:.2f}")
        lines.append(line)
    if "vs_geant4" in report:
        lines.append(f"{'E (GeV)':>8}  {'Geant4 ms':>10}  {'calosim ms':>10}  {'speed-up':>9}")
        for r in report["vs_geant4"]:
            lines.append(f"{r['energy_gev']:>8.0f}  {r['geant4_ms_per_shower']:>10.1f}  "
                         f"{r['calosim_ms_per_shower']:>10.4f}  {r['speedup']:>9.0f}")
    if "vs_geant4_fastsim" in report:
        lines.append(f"Geant4 per event, e+, full and with {report['fastsim_model']} as its fast simulation "
                     "(one worker each, same seeds, one run):")
        lines.append(f"{'E (GeV)':>8}  {'events':>6}  {'Geant4 ms':>10}  {'+fastsim ms':>11}  {'speed-up':>9}  "
                     f"{'fast-simulated':>14}")
        for r in report["vs_geant4_fastsim"]:
            lines.append(f"{r['energy_gev']:>8.0f}  {r['events']:>6}  {r['geant4_ms_per_event']:>10.1f}  "
                         f"{r['fastsim_ms_per_event']:>11.2f}  {r['speedup']:>9.1f}  "
                         f"{100 * r['fastsim_fraction']:>13.0f}%")
    return "\n".join(lines)
