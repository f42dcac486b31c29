"""The normalised figure a tracked benchmark carries beside its time, and the machine kind its runs belong to.

The normalised figure is a benchmark's seconds divided by the seconds that plain matrix products of the same
shapes take on the same backend, timed in the same run (:class:`InterleavedGemm`). Load from other jobs on a
shared machine slows both alike, so the ratio moves less than either time between runs taken minutes apart;
the regression gate (calosim.bench_history) reads it. It has no unit: 1.0 would be a model that runs as fast
as its bare matrix products.
"""

from __future__ import annotations

import re
import time
from collections import Counter


def normalised(seconds: float, gemm_seconds: float) -> dict:
    """extra_info fields of a benchmark whose fastest round took ``seconds`` and its GEMM reference
    ``gemm_seconds`` (both seconds of the same work: one call at the benchmark's batch)."""
    if seconds <= 0 or gemm_seconds <= 0:
        raise ValueError(f"times must be positive, got {seconds} s and a GEMM reference of {gemm_seconds} s")
    return {"gemm_seconds": gemm_seconds, "normalised": seconds / gemm_seconds}


def machine_kind(cpu: str, cpu_count: int) -> str:
    """A file-name-safe label of the machine kind, e.g. 'amd-epyc-2cpu': saved runs compare only with runs of
    the same kind, because even the normalised figure depends on caches and core count."""
    slug = re.sub(r"\((r|tm)\)|cpu|@.*", "", cpu.lower())
    slug = re.sub(r"[^a-z0-9.]+", "-", slug).strip("-") or "unknown"
    return f"{slug}-{cpu_count}cpu"


class InterleavedGemm:
    """The GEMM reference of a benchmark, timed as one pass of its products before each of the benchmark's
    rounds: pass it as pytest-benchmark's ``pedantic(setup=...)``, which calls it untimed before every round.

    Why not calosim.benchmark.gemm_seconds after the benchmark: it keeps the fastest of 0.3 s of repeats, and on
    a 2-core machine shared with other jobs a fast product finds a quiet moment among many tries that the
    benchmark's five rounds do not, so the ratio drifted as much as the times did (README, Tracking speed).
    Interleaved, the reference sees the same load at the same moments, with as many samples.

    shapes: (count, M, K, N) products as calosim.benchmark's gemm_shapes and a trainer's step_products give them; a
    shape listed n times is run n times on one set of operands."""

    def __init__(self, backend, shapes: list[tuple[int, int, int, int]], rng):
        self.backend = backend
        self.products = []
        for (count, m, k, n), times in Counter(shapes).items():
            a = backend.asarray(rng.standard_normal((count, m, k) if count > 1 else (m, k)))
            b = backend.asarray(rng.standard_normal((count, k, n) if count > 1 else (k, n)))
            self.products.append((a, b, times))
        self.times: list[float] = []

    def __call__(self) -> None:
        start = time.perf_counter()
        for a, b, times in self.products:
            for _ in range(times):
                self.backend.matmul(a, b)
        self.backend.synchronize()
        self.times.append(time.perf_counter() - start)

    def seconds(self) -> float:
        """The fastest pass, the first (warm-up: compilation, caches) left out when there are others."""
        return min(self.times[1:] or self.times)

    def figures(self, round_seconds: list[float]) -> dict:
        """extra_info fields for a benchmark whose timed rounds took ``round_seconds`` (pytest-benchmark's
        ``stats.stats.data``; the reference ran once before each, and once more before the warm-up rounds):
        the normalised figure is the median over rounds of the round's time over the reference pass just before
        it, so each ratio is taken under one load; ``normalised_of_minima`` is the fastest round over the
        fastest pass, kept for comparison."""
        paired = self.times[len(self.times) - len(round_seconds):]
        ratios = sorted(t / g for t, g in zip(round_seconds, paired, strict=True))
        middle = len(ratios) // 2
        median = ratios[middle] if len(ratios) % 2 else (ratios[middle - 1] + ratios[middle]) / 2
        return {**normalised(min(round_seconds), self.seconds()), "normalised": median,
                "normalised_of_minima": min(round_seconds) / self.seconds()}
