"""Benchmarks run only with ``pytest --benchmark-only``; a plain ``pytest`` run skips them.

Each benchmark records the backend, its threads, the machine and the commit in pytest-benchmark's extra_info,
and every run is kept in pytest-benchmark's storage (.benchmarks/ unless --benchmark-storage says otherwise)
for `calosim bench --history`.
"""

from __future__ import annotations

import pytest
from pytest_benchmark.utils import get_commit_info, get_tag

from calosim.bench_reference import machine_kind
from calosim.info import machine_info as calosim_machine_info


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    # Autosave here, not in addopts: the plain test run has no benchmarks, and an autosave with nothing to save
    # warns (an error under filterwarnings). tryfirst: pytest-benchmark reads the option in its own configure.
    if config.getoption("benchmark_only", default=False) and not config.getoption("benchmark_save"):
        config.option.benchmark_autosave = config.option.benchmark_autosave or get_tag()


def pytest_benchmark_update_machine_info(config, machine_info):
    ours = calosim_machine_info()  # the hook's argument is pytest-benchmark's machine_info
    machine_info.update(machine_kind=machine_kind(ours["cpu"], ours["cpu_count"]), calosim=ours["calosim"],
                        numba_threads=ours["numba_threads"], versions=ours["versions"])


def pytest_collection_modifyitems(config, items):
    if config.getoption("benchmark_only", default=False):
        return
    skip = pytest.mark.skip(reason="benchmark: run with `pytest --benchmark-only`")
    for item in items:
        if "benchmark" in getattr(item, "fixturenames", ()):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def machine():
    return calosim_machine_info()


@pytest.fixture(scope="session")
def commit():
    info = get_commit_info()
    return info["id"][:12] + ("+" if info["dirty"] else "")  # "+": uncommitted changes


@pytest.fixture
def record(benchmark, machine, commit):
    """Store the machine, the commit and the given facts beside a benchmark's timings."""

    def put(**facts):
        benchmark.extra_info.update(
            cpu=machine["cpu"], cpu_count=machine["cpu_count"], numba_threads=machine["numba_threads"],
            versions=machine["versions"], gpu_devices=machine["gpu_devices"], commit=commit, **facts,
        )

    return put
