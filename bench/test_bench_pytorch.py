"""The PyTorch yardstick of the speed issue, timed in the same run as calosim's own benchmarks: generation of
the `calogan` networks at batch 1, 128, 1024 (ms/shower) and one training iteration at batch 128, from
bench/pytorch_calogan.py. Skipped unless torch is installed (`pip install torch`, not a calosim dependency)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the PyTorch yardstick needs torch (pip install torch)")

from pytorch_calogan import TrainingIteration, real_batch  # noqa: E402


def _record(record, **facts):
    record(backend="pytorch", torch_version=torch.__version__, torch_threads=torch.get_num_threads(), **facts)


@pytest.mark.parametrize("batch", (1, 128, 1024))
def test_pytorch_generation(benchmark, record, batch):
    iteration = TrainingIteration()
    generator = iteration.generator.eval()
    z, energy = iteration.inputs(batch)

    def run():
        with torch.no_grad():
            generator(z, energy)

    benchmark.pedantic(run, rounds=5 if batch < 1024 else 3, iterations=1, warmup_rounds=1)
    _record(record, config="calogan", batch=batch, ms_per_shower=1e3 * benchmark.stats.stats.min / batch)


def test_pytorch_training_iteration(benchmark, record):
    iteration = TrainingIteration()
    images, energy = real_batch(128)
    benchmark.pedantic(lambda: iteration(images, energy), rounds=3, iterations=1, warmup_rounds=1)
    _record(record, config="calogan", batch=128, seconds_per_iteration=benchmark.stats.stats.min)


def test_pytorch_networks_match_calosim():
    """The yardstick times the same networks: equal parameter counts, image shapes and logits shape."""
    from calosim.benchmark import _bench_model

    model = _bench_model("calogan", "numpy")
    iteration = TrainingIteration()
    for ours, theirs in ((model.generator, iteration.generator), (model.discriminator, iteration.discriminator)):
        assert sum(p.value.size for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())
    z, energy = iteration.inputs(4)
    with torch.no_grad():
        images = iteration.generator(z, energy)
        logits = iteration.discriminator(images, energy)
    assert [tuple(x.shape[2:]) for x in images] == [tuple(s) for s in model.geometry.shapes]
    assert tuple(logits.shape) == (4, 1)
