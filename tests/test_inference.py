"""The folded sampling generator equals the trained generator's inference forward (float32 rounding)."""

from __future__ import annotations

import numpy as np
import pytest

from calosim.backends import get_backend
from calosim.geometry import calogan_geometry
from calosim.models.calogan import CaloGAN
from calosim.models.calogan.inference import FoldedGenerator


def _model(backend_name, dtype, config="small", seed=0, **overrides):
    backend = get_backend(backend_name, dtype)
    rng = np.random.default_rng(seed)
    model = CaloGAN.build(CaloGAN.get_config(config, **overrides), calogan_geometry(), backend, rng)
    for layer in model.generator.walk():  # trained-looking BatchNorm statistics
        for key, value in layer.state.items():
            layer.state[key] = backend.asarray(np.abs(rng.standard_normal(value.shape)) + 0.5)
        for name, param in layer.params.items():
            if name in ("gamma", "beta"):
                param.value[...] = backend.asarray(rng.normal(1.0 if name == "gamma" else 0.0, 0.3, param.value.shape))
    return model


@pytest.mark.parametrize("energy_scaled,knee", [(False, 0.0), (True, 0.05)], ids=["paper", "energy_scaled_knee"])
@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
def test_folded_generator_equals_inference_forward(backend_name, energy_scaled, knee):
    model = _model(backend_name, "float64", g_energy_scaled_output=energy_scaled, g_output_knee=knee,
                   g_latent_energy_power=-0.5 if energy_scaled else 0.0)
    be = model.backend
    rng = np.random.default_rng(1)
    z = be.asarray(rng.standard_normal((5, model.config.latent_dim)))
    energy = be.asarray(rng.uniform(1.0, 100.0, 5))
    expected = model.generator.forward([z, energy], training=False)
    folded = FoldedGenerator(model.generator).forward(z, energy)
    for got, want in zip(folded, expected):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12 * float(np.abs(want).max()))


def test_folded_generator_does_fewer_flops_for_the_paper_config():
    model = _model("numpy", "float32", config="calogan")
    folded = FoldedGenerator(model.generator)
    assert folded.flops(1) < 0.5 * model.generator.flops(1)
