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
