"""The normalised figure a tracked benchmark carries beside its time, and the machine kind its runs belong to.

The normalised figure is a benchmark's seconds divided by the seconds that plain matrix products of the same
shapes take on the same backend, timed in the same run right after it (calosim.benchmark.gemm_seconds). Load
from other jobs on a shared machine slows both alike, so the ratio moves much less than either time between
runs taken minutes apart; the regression gate (calosim.bench_history) reads it. It has no unit: 1.0 would be
a model that runs as fast as its bare matrix products.
"""

from __future__ import annotations

import re


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
