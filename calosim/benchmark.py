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
    gflops: float
    gemm_gflops: float
    ratio_to_gemm: float

    def to_dict(self) -> dict:
        return asdict(self)


def bench_generation(generate: Callable[[int], object], flops: Callable[[int], int],
                     gemm_shapes: Callable[[int], list], backend, batch_sizes, seed: int = 0,
                     min_seconds: float = 0.3) -> list[BenchRow]:
    """Measure ``generate(batch)`` for each batch size beside the GEMMs of the same shapes."""
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
        ))
    return rows


def format_rows(rows: list[BenchRow]) -> str:
    lines = [f"{'batch':>6}  {'ms/shower':>10}  {'showers/s':>10}  {'GFLOP/s':>8}  {'GEMM GFLOP/s':>12}  {'ratio':>6}"]
    for r in rows:
        lines.append(f"{r.batch_size:>6}  {r.ms_per_shower:>10.4f}  {r.showers_per_s:>10.1f}  {r.gflops:>8.1f}  "
                     f"{r.gemm_gflops:>12.1f}  {r.ratio_to_gemm:>6.2f}")
    return "\n".join(lines)


def _bench_model(config: str, backend_name: str, model_path=None, seed: int = 0):
    """A CaloGAN on ``backend_name``: the trained one in ``model_path``, or a fresh one of ``config`` in the
    CaloGAN geometry (timing does not depend on the weights)."""
    from calosim.backends import get_backend
    from calosim.geometry import calogan_geometry
    from calosim.models.calogan import CaloGAN
    from calosim.models.config import get_config

    backend = get_backend(backend_name)
    if model_path is not None:
        from calosim.checkpoint import load_model

        return load_model(model_path, backend)
    return CaloGAN.build(get_config(config), calogan_geometry(), backend, np.random.default_rng(seed))


def bench_generator(config: str = "calogan", backend_name: str = "numba", batch_sizes=(1, 128, 1024),
                    model_path=None, seed: int = 0, min_seconds: float = 0.3) -> list[BenchRow]:
    """ms/shower of the generator (inference mode) per batch size, beside the GEMMs of its own shapes."""
    model = _bench_model(config, backend_name, model_path, seed)
    backend = model.backend
    rng = np.random.default_rng(seed)
    largest = max(batch_sizes)
    z = backend.asarray(rng.standard_normal((largest, model.config.latent_dim)))
    energy = backend.asarray(rng.uniform(1.0, 100.0, size=largest))
    generator = model.generator
    return bench_generation(lambda b: model.generate(z[:b], energy[:b]), generator.flops, generator.gemm_shapes,
                            backend, batch_sizes, seed=seed, min_seconds=min_seconds)


def bench_train_step(config: str = "calogan", backend_name: str = "numba", batch_size: int = 128, seed: int = 0,
                     min_seconds: float = 1.0) -> dict:
    """Seconds of one full training iteration (D real, D fake, G twice) at ``batch_size``, on random showers."""
    from calosim.train import GANTrainer

    model = _bench_model(config, backend_name, None, seed)
    backend = model.backend
    rng = np.random.default_rng(seed)
    energy = rng.uniform(1.0, 100.0, size=batch_size)
    images = []
    for shape in model.geometry.shapes:
        cells = rng.exponential(0.01, size=(batch_size, *shape, 1)) * (rng.random((batch_size, *shape, 1)) < 0.5)
        images.append(backend.asarray(cells))
    trainer = GANTrainer(model, rng)
    energy_b = backend.asarray(energy)
    seconds = best_time(lambda: trainer.train_step(images, energy_b), backend.synchronize, min_seconds=min_seconds,
                        min_repeats=2)
    g, d = model.generator, model.discriminator
    # a backward pass costs two forwards (data and weight gradients). D real and D fake: 2 x 3 D; the fake
    # batch: 1 G; each of the two G steps: G and D forward and backward, 3 G + 3 D.
    steps = model.config.generator_steps
    flops = (1 + 3 * steps) * g.flops(batch_size) + (6 + 3 * steps) * d.flops(batch_size)
    return {"config": config, "backend": backend_name, "batch_size": batch_size, "seconds_per_step": seconds,
            "gflops": flops / seconds / 1e9}
