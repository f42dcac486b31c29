"""Model files written before the model contract (calosim at commit cf8b941, tests/data/README.md) still load:
the same config, the same weights, and the same showers from the same latent vectors."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from calosim.backends import get_backend
from calosim.models.files import load_model, read_model_header

DATA = pathlib.Path(__file__).parent / "data"
EXPECTED = np.load(DATA / "model_before_contract_showers.npz")


@pytest.mark.parametrize("model_type", ["calogan", "wgan-gp", "vae", "lagan"])
def test_model_file_written_before_the_contract_loads_and_generates_the_same(model_type):
    path = DATA / f"model_before_contract_{model_type}.h5"
    model = load_model(path, get_backend("numpy"))
    assert model.model_type == model_type and model.particle == "e+" and model.energy_range == (1.0, 100.0)
    assert read_model_header(path)["epoch"] == 3
    z = EXPECTED[f"{model_type}/z"]
    labels = np.array([0, 1, 0, 1]) if model_type == "lagan" else None
    layers = model.generate(model.backend.asarray(z), model.backend.asarray(np.array([2.0, 10.0, 50.0, 90.0])),
                            labels=labels)
    assert len(layers) == model.geometry.n_layers
    for i, x in enumerate(layers):
        np.testing.assert_allclose(x, EXPECTED[f"{model_type}/layer_{i}"], rtol=1e-4, atol=1e-4)


def test_wgan_gp_scales_stored_in_an_old_config_become_fitted_state():
    header = read_model_header(DATA / "model_before_contract_wgan-gp.h5")
    assert "layer_energy_scales" not in header["config"].to_dict()
    np.testing.assert_array_equal(header["fitted"]["layer_energy_scales"], [0.2, 0.7, 0.1])
