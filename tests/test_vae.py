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
from calosim.models.files import load_model, save_model
from calosim.models.vae import VAE, VAETrainer
from calosim.training import train

TINY = {"latent_dim": 3, "hidden": [8, 6], "batch_size": 16, "epochs": 2, "lr": 1e-3, "energy_weight": 0.0,
        "prior_energy_weight": 0.0, "output_activation": "relu", "occupancy": False, "learned_prior": False,
        "layer_energy_head": False, "recon_sigma": 0.1}


def _model(backend_name, dtype="float32", **overrides):
    cfg = registry.get_model_type("vae").get_config("small").replace(**{**TINY, **overrides})
    return VAE.build(cfg, TINY_GEOMETRY, get_backend(backend_name, dtype), np.random.default_rng(0), "e+",
                     (1.0, 100.0))


@pytest.mark.parametrize("transform,energy_weight,head", [
    ("log", 0.0, ""), ("fraction", 0.0, ""), ("log", 5.0, ""), ("fraction", 5.0, ""),
    ("log", 5.0, "occupancy"), ("fraction", 5.0, "occupancy"), ("log", 5.0, "prior"), ("log", 5.0, "occupancy+prior"),
    ("log", 0.0, "layers"), ("log", 5.0, "occupancy+prior+layers"),
])
def test_vae_loss_gradient(backend_name, transform, energy_weight, head):
    """Whole loss, float64: with the occupancy head (BCE beside the masked amounts) and the learned prior (KL
    between two Gaussians, prior draws through the prior network), the response terms on both paths."""
    extra = {}
    if "occupancy" in head:
        extra.update(occupancy=True, output_activation="linear")
    if "prior" in head:
        extra.update(learned_prior=True, prior_hidden=4, prior_energy_weight=energy_weight)
    if "layers" in head:
        extra.update(layer_energy_head=True, output_activation="linear")
    model = _model(backend_name, "float64", transform=transform, energy_weight=energy_weight, **extra)
    be = model.backend
    s = tiny_showers(6, seed=1)
    x = model.to_training(s.layers, s.energy)
    e = be.asarray(s.energy.astype(np.float64))
    c = model.condition(e)
    rng = np.random.default_rng(2)
    eps = be.asarray(rng.standard_normal((6, 3)))
    z_prior = be.asarray(rng.standard_normal((6, 3)))
    if energy_weight:  # a decoder far from the data, so that the response term is not ~0
        for p in model.decoder.parameters():
            p.value[...] = p.value * 3.0
    if model.prior is not None:  # away from its N(0, 1) start (a zero output layer)
        for p in model.prior.parameters():
            p.value[...] = p.value + be.asarray(0.3 * rng.standard_normal(p.value.shape))

    targets = model.layer_targets(s.layers, s.energy) if model.config.layer_energy is not None else None

    def loss_and_grads():
        total, _, _, energy = model.loss_and_backward(x, c, eps, e, z_prior, targets)
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


HEADS = {"latent_dim": 3, "hidden": [8, 6], "batch_size": 16, "epochs": 2}  # the small config's heads


@pytest.fixture(params=["plain", "heads"])
def tiny_config(tmp_path, request):
    path = tmp_path / "vae.json"
    path.write_text(json.dumps(TINY if request.param == "plain" else HEADS))
    return path


def test_resume_equals_uninterrupted_on_a_calochallenge_file(backend_name, tmp_path, tiny_config):
    data = write_showers(tmp_path / "challenge.h5", tiny_showers(96), format=CALOCHALLENGE)
    kw = dict(data=data, backend=backend_name, config_file=tiny_config, seed=5)
    train(model_type="vae", out=tmp_path / "full", epochs=2, **kw)
    train(model_type="vae", out=tmp_path / "split", epochs=1, **kw)
    train(model_type="vae", out=tmp_path / "split", epochs=2, resume=True, **kw)
    a = load_model(tmp_path / "full" / "last.h5", get_backend("numpy"))
    b = load_model(tmp_path / "split" / "last.h5", get_backend("numpy"))
    for p, q in zip(a.parameters(), b.parameters()):
        assert p.name == q.name and np.array_equal(p.value, q.value), p.name
    nets = {"encoder", "decoder"} | ({"prior"} if b.config.conditional_prior is not None else set())
    assert set(b.networks()) == nets and b.geometry == TINY_GEOMETRY


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


def test_kl_between_gaussians_matches_the_standard_prior_case_and_its_gradient():
    from calosim.models.vae import kl_divergence, kl_divergence_gaussians

    rng = np.random.default_rng(0)
    mu, lv, mu_p, lv_p = (rng.standard_normal((4, 3)) for _ in range(4))
    kl0, dmu0, dlv0 = kl_divergence(mu, lv, np)
    kl, dmu, dlv, _, _ = kl_divergence_gaussians(mu, lv, np.zeros_like(mu), np.zeros_like(lv), np)
    np.testing.assert_allclose(kl, kl0, rtol=1e-12)
    np.testing.assert_allclose(dmu, dmu0, rtol=1e-12)
    np.testing.assert_allclose(dlv, dlv0, rtol=1e-12)
    _, *grads = kl_divergence_gaussians(mu, lv, mu_p, lv_p, np)
    args, h = [mu, lv, mu_p, lv_p], 1e-6
    for i, g in enumerate(grads):
        d = rng.standard_normal(mu.shape)
        plus = [a + h * d if j == i else a for j, a in enumerate(args)]
        minus = [a - h * d if j == i else a for j, a in enumerate(args)]
        numeric = (kl_divergence_gaussians(*plus, np)[0].sum() - kl_divergence_gaussians(*minus, np)[0].sum()) / (2 * h)
        assert abs(numeric - (g * d).sum()) < 1e-6 * max(1.0, abs(numeric)), (i, numeric, (g * d).sum())


def test_occupancy_head_learns_the_fraction_of_empty_cells_and_generation_follows_it():
    model = _model("numpy", occupancy=True, output_activation="linear", learned_prior=True, lr=1e-2)
    trainer = VAETrainer(model, np.random.default_rng(1))
    s = tiny_showers(64, seed=4)  # 30% of the cells are empty
    for _ in range(150):
        trainer.train_step(s.layers, s.energy)
    be = model.backend
    z = be.asarray(model.sample_latent(np.random.default_rng(0), 400))
    layers = model.generate(z, be.asarray(np.full(400, 50.0)))
    occupancy = np.mean(np.concatenate([(x > 0).reshape(400, -1) for x in layers], axis=1))
    assert 0.6 < occupancy < 0.8, occupancy
    again = model.generate(z, be.asarray(np.full(400, 50.0)))  # the same latent vectors: the same showers
    assert all(np.array_equal(a, b) for a, b in zip(layers, again))
    other = model.generate(z, be.asarray(np.full(400, 50.0)), rng=np.random.default_rng(7))
    assert not all(np.array_equal(a, b) for a, b in zip(layers, other))


def test_learned_prior_is_saved_and_loaded(tmp_path):
    model = _model("numpy", occupancy=True, output_activation="linear", learned_prior=True)
    for p in model.prior.parameters():
        p.value[...] = np.random.default_rng(3).standard_normal(p.value.shape)
    save_model(tmp_path / "m.h5", model)
    loaded = load_model(tmp_path / "m.h5", get_backend("numpy"))
    assert set(loaded.networks()) == {"encoder", "decoder", "prior"}
    be = model.backend
    z, e = be.asarray(np.random.default_rng(0).standard_normal((5, 3))), be.asarray(np.full(5, 30.0))
    ours = model.generate(z, e)
    theirs = loaded.generate(z, e)  # the same weights and latent vectors: the same occupancy draws
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)
    on_numba = load_model(tmp_path / "m.h5", get_backend("numba"))
    for p, q in zip(model.parameters(), on_numba.parameters()):
        np.testing.assert_array_equal(p.value, on_numba.backend.to_numpy(q.value))


def test_layer_energy_head_sets_each_generated_layer_energy():
    model = _model("numpy", "float64", layer_energy_head=True, output_activation="linear", occupancy=True)
    be = model.backend
    s = tiny_showers(5, seed=2)
    t = model.layer_targets(s.layers, s.energy)
    e = s.energy.astype(np.float64)
    sums = np.stack([x.reshape(5, -1).sum(1) for x in s.layers], 1)
    np.testing.assert_allclose(np.exp(t) - 1e-3, sums / (1000 * e[:, None]), rtol=1e-6)
    cells = be.asarray(model.geometry.flatten([np.asarray(x, np.float64) for x in s.layers]))
    out = model.rescale_layers(cells * 3.0, t, e)  # any shape: the head's energies come back
    for a, b in zip(model.geometry.unflatten(out), s.layers):
        np.testing.assert_allclose(a.reshape(5, -1).sum(1), b.reshape(5, -1).sum(1), rtol=1e-6)
    z = be.asarray(model.sample_latent(np.random.default_rng(0), 5))
    layers = model.generate(z, be.asarray(e))
    t_hat = model.decode(z, model.condition(be.asarray(e)), False)[:, -3:]
    for i, x in enumerate(layers):
        sums = x.reshape(5, -1).sum(1)
        want = np.maximum(np.exp(t_hat[:, i]) - 1e-3, 0) * 1000 * e
        np.testing.assert_allclose(sums[sums > 0], want[sums > 0], rtol=1e-6)
