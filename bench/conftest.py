"""Benchmarks run only with ``pytest --benchmark-only``; a plain ``pytest`` run skips them.

Each benchmark records the backend, its threads and the machine in pytest-benchmark's extra_info.
"""

from __future__ import annotations

import pytest

from calosim.info import machine_info


def pytest_collection_modifyitems(config, items):
    if config.getoption("benchmark_only", default=False):
        return
    skip = pytest.mark.skip(reason="benchmark: run with `pytest --benchmark-only`")
    for item in items:
        if "benchmark" in getattr(item, "fixturenames", ()):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def machine():
    return machine_info()


@pytest.fixture
def record(benchmark, machine):
    """Store the machine and the given facts beside a benchmark's timings."""

    def put(**facts):
        benchmark.extra_info.update(
            cpu=machine["cpu"], cpu_count=machine["cpu_count"], numba_threads=machine["numba_threads"],
            versions=machine["versions"], gpu_devices=machine["gpu_devices"], **facts,
        )

    return put
