"""VAE: the whole loss's gradient (reparameterisation and KL included) against finite differences, training
lowers the loss, train / resume / save / load / generate, and a CaloChallenge-format file."""

from __future__ import annotations

import json

import numpy as np
import pytest
from family_helpers import TINY_GEOMETRY, check_parameters, tiny_showers

from calosim.backends import get_backend
from calosim.data import write_showers
from calosim.data.formats import CALOCHALLENGE
from calosim.models import registry
from calosim.models.vae import VAE, VAETrainer
from calosim.train_registry import train_model_type

TINY = {"latent_dim": 3, "hidden": [8, 6], "batch_size": 16, "epochs": 2, "lr": 1e-3, "energy_weight": 0.0,
        "prior_energy_weight": 0.0, "output_activation": "relu"}


def _model(backend_name, dtype="float32", **overrides):
    cfg = registry.get_model_type("vae").get_config("small").replace(**{**TINY, **overrides})
    return VAE.build(cfg, TINY_GEOMETRY, get_backend(backend_name, dtype), np.random.default_rng(0), "e+",
                     (1.0, 100.0))


@pytest.mark.parametrize("transform,energy_weight", [("log", 0.0), ("fraction", 0.0), ("log", 5.0),
                                                      ("fraction", 5.0)])
def test_vae_loss_gradient(backend_name, transform, energy_weight):
    model = _model(backend_name, "float64", transform=transform, energy_weight=energy_weight)
    be = model.backend
    s = tiny_showers(6, seed=1)
    x = model.to_training(s.layers, s.energy)
    e = be.asarray(s.energy.astype(np.float64))
    c = model.condition(e)
    eps = be.asarray(np.random.default_rng(2).standard_normal((6, 3)))
    if energy_weight:  # a decoder far from the data, so that the response term is not ~0
        for p in model.decoder.parameters():
            p.value[...] = p.value * 3.0

    def loss_and_grads():
        total, _, _, energy = model.loss_and_backward(x, c, eps, e)
        assert energy > 0 or not energy_weight
        return total, {p: p.grad for p in model.parameters()}

    result = check_parameters(loss_and_grads, model.parameters(), np.random.default_rng(3), name="vae")
    assert result.passed(1e-6), result.describe()


def test_training_lowers_the_loss_and_generation_is_non_negative():
    model = _model("numpy")
    trainer = VAETrainer(model, np.random.default_rng(1))
    s = tiny_showers(16, seed=4)
    first = trainer.train_step(s.layers, s.energy)["loss"]
    for _ in range(30):
        last = trainer.train_step(s.layers, s.energy)["loss"]
    assert last < first
    be = model.backend
    layers = model.generate(be.asarray(model.sample_latent(np.random.default_rng(0), 3)), be.asarray(np.ones(3) * 20))
    assert [x.shape for x in layers] == [(3, 2, 8), (3, 4, 4), (3, 4, 2)] and all(x.min() >= 0 for x in layers)


@pytest.fixture
def tiny_config(tmp_path):
    path = tmp_path / "vae.json"
    path.write_text(json.dumps(TINY))
    return path


def test_resume_equals_uninterrupted_on_a_calochallenge_file(backend_name, tmp_path, tiny_config):
    data = write_showers(tmp_path / "challenge.h5", tiny_showers(96), format=CALOCHALLENGE)
    kw = dict(data=data, backend=backend_name, config_file=tiny_config, seed=5)
    train_model_type("vae", tmp_path / "full", epochs=2, **kw)
    train_model_type("vae", tmp_path / "split", epochs=1, **kw)
    train_model_type("vae", tmp_path / "split", epochs=2, resume=True, **kw)
    a = registry.load(tmp_path / "full" / "last.h5", get_backend("numpy"))
    b = registry.load(tmp_path / "split" / "last.h5", get_backend("numpy"))
    for p, q in zip(a.parameters(), b.parameters()):
        assert p.name == q.name and np.array_equal(p.value, q.value), p.name
    assert set(registry.networks_of(b)) == {"encoder", "decoder"} and b.geometry == TINY_GEOMETRY


def test_response_term_and_threshold():
    model = _model("numpy", "float64", energy_weight=1.0, threshold_mev=100.0)
    s = tiny_showers(8, seed=3)
    x = model.to_training(s.layers, s.energy)
    e = s.energy.astype(np.float64)
    r, _ = model.response_and_gradient(x, e)
    np.testing.assert_allclose(r, s.total_energy() / (1000.0 * e), rtol=1e-9)
    layers = model.to_layers(x, e)
    flat = np.concatenate([x.reshape(8, -1) for x in layers], axis=1)
    assert flat[flat > 0].min() >= 100.0 and (flat == 0).sum() > (s.flat() == 0).sum()
