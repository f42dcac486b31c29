"""The CaloGAN training iteration's FLOP count (CaloGANTrainer.step_products) against a count by hand."""

from __future__ import annotations

import numpy as np

from calosim.benchmark import _bench_model


def _flops(shapes):
    return sum(2 * count * m * k * n for count, m, k, n in shapes)


def test_step_products_match_the_iteration():
    model = _bench_model("small", "numpy")
    trainer = model.trainer(np.random.default_rng(0))  # switches off dL/dz: the streams' first dense layers
    batch = 8
    g, d = model.generator.flops(batch), model.discriminator.flops(batch)
    first_dense = sum(stream.layers[0].flops(batch) for stream in model.generator.streams)
    # forwards: G 3 (fake batch, two G steps), D 4 (real, fake, two G steps); a backward costs two forwards,
    # but G's first dense layers skip dL/dx and the G steps skip D's weight gradients
    steps = model.config.training.generator_steps
    expected = (1 + 3 * steps) * g - steps * first_dense + (2 * 3 + steps * 2) * d
    assert _flops(trainer.step_products(batch)) == expected
