"""Generation (ms/shower) of the `calogan` and `small` configs per backend at batch 1, 128, 1024 (10000 on a
GPU), and one full training iteration (D real, D fake, G twice) at batch 128. Run with
`pytest --benchmark-only bench/`; the ms/shower of each case is in its extra_info, beside its normalised figure
(seconds over the seconds of plain matrix products of its own shapes, timed between its rounds: what
`calosim bench --history --fail-if-slower` gates on)."""

from __future__ import annotations

import numpy as np
import pytest

from calosim.backends import backend_status
from calosim.bench_reference import InterleavedGemm
from calosim.benchmark import _bench_model, generation_timer

BACKENDS = [name for name, state in backend_status().items() if state == "available"]
CONFIGS = ("small", "calogan")


def _batches(backend_name):
    return (1, 128, 1024, 10000) if backend_name == "cupy" else (1, 128, 1024)


CASES = [(b, c, n) for b in BACKENDS for c in CONFIGS for n in _batches(b)]


@pytest.mark.parametrize("backend_name,config,batch", CASES, ids=[f"{b}-{c}-{n}" for b, c, n in CASES])
def test_generation(benchmark, record, backend_name, config, batch):
    model = _bench_model(config, backend_name)
    sample, _, gemm_shapes, _ = generation_timer(model)  # the sampling path: CaloGAN's folded generator
    be = model.backend
    rng = np.random.default_rng(0)
    energy = rng.uniform(1.0, 100.0, batch)

    def run():
        sample(energy, rng)
        be.synchronize()

    reference = InterleavedGemm(be, gemm_shapes(batch), rng)
    benchmark.pedantic(run, setup=reference, rounds=5 if batch < 1024 else 3, iterations=1, warmup_rounds=1)
    seconds = benchmark.stats.stats.min
    record(backend=backend_name, config=config, batch=batch, ms_per_shower=1e3 * seconds / batch,
           **reference.figures(benchmark.stats.stats.data))


@pytest.mark.parametrize("backend_name,config", [(b, c) for b in BACKENDS for c in CONFIGS])
def test_training_iteration(benchmark, record, backend_name, config):
    batch = 128
    model = _bench_model(config, backend_name)
    be = model.backend
    rng = np.random.default_rng(0)
    images = [be.asarray(rng.exponential(0.01, (batch, *s, 1)) * (rng.random((batch, *s, 1)) < 0.5))
              for s in model.geometry.shapes]
    energy = be.asarray(rng.uniform(1.0, 100.0, batch))
    trainer = model.trainer(rng)  # the step on backend arrays in training units, as the PyTorch yardstick's

    def run():
        trainer.gan.train_step(images, energy)
        be.synchronize()

    reference = InterleavedGemm(be, trainer.step_products(batch), rng)
    benchmark.pedantic(run, setup=reference, rounds=3, iterations=1, warmup_rounds=1)
    seconds = benchmark.stats.stats.min
    record(backend=backend_name, config=config, batch=batch, seconds_per_iteration=seconds,
           **reference.figures(benchmark.stats.stats.data))
