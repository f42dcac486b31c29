"""WGAN-GP: architecture, whole-loss gradients (penalty included) against finite differences, the 5:1 step
schedule, the energy-point schedule, and train / resume / save / load / generate on CaloGAN- and
CaloChallenge-format files."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from family_helpers import TINY_GEOMETRY, check_parameters, tiny_showers

from calosim.backends import get_backend
from calosim.data import write_showers
from calosim.data.dataset import energy_point_batches
from calosim.geometry import calogan_geometry
from calosim.models import registry
from calosim.models.files import load_model, read_model_header, save_model
from calosim.models.wgan_gp import WGANGP, WGANGPTrainer
from calosim.training import train

TINY = {"latent_dim": 4, "g_hidden": [6, 8], "d_hidden": 10, "batch_size": 16, "epochs": 2, "lr_g": 1e-3,
        "lr_d": 1e-3}


def _model(backend_name, dtype="float32", layer_energy_scales=None, **overrides):
    if overrides.get("layer_energies") is False:  # the empty-layer head goes with the layer energies
        overrides.setdefault("layer_empty_head", False)
    cfg = registry.get_model_type("wgan-gp").get_config("small").replace(**{**TINY, **overrides})
    fitted = {"layer_energy_scales": layer_energy_scales} if layer_energy_scales is not None else None
    return WGANGP.build(cfg, TINY_GEOMETRY, get_backend(backend_name, dtype), np.random.default_rng(0), "e+",
                        (1.0, 100.0), fitted)


def test_fastcalogan_architecture_in_the_calogan_geometry():
    kind = registry.get_model_type("wgan-gp")
    model = kind.build(kind.get_config("fastcalogan"), calogan_geometry(), get_backend("numpy"),
                       np.random.default_rng(0))
    dense = [layer for layer in model.generator.layers if type(layer).__name__ == "Dense"]
    assert [d.units for d in dense] == [50, 100, 200, 504] and model.generator.input_shape == (51,)
    dense = [layer for layer in model.critic.layers if type(layer).__name__ == "Dense"]
    assert [d.units for d in dense] == [504, 504, 504, 1] and model.critic.input_shape == (505,)
    t = model.config.training
    assert (t.gp_weight, t.critic_steps, t.lr_d, t.beta1, t.batch_size) == (10.0, 5, 1e-4, 0.55, 128)


@pytest.fixture
def batch():
    s = tiny_showers(8, seed=2)
    return s.layers, s.energy


def test_critic_loss_gradient_with_penalty(backend_name, batch):
    model = _model(backend_name, "float64")
    be = model.backend
    trainer = WGANGPTrainer(model, np.random.default_rng(1))
    x_real = model.to_training(*batch)
    energy = be.asarray(batch[1].astype(np.float64))
    z, c = trainer.fake_batch(energy)
    x_fake = model.generator_forward(z, c)[:, :model.n_features] + 0.01  # the untrained generator's, away from 0
    eps = be.asarray(np.random.default_rng(3).uniform(0, 1, (8, 1)))

    def loss_and_grads():
        w, p, _, grads = trainer.critic_loss(x_real, x_fake, c, eps)
        return w + p, grads

    result = check_parameters(loss_and_grads, model.critic.parameters(), np.random.default_rng(4), name="critic")
    assert result.passed(1e-6), result.describe()


@pytest.mark.parametrize("energy_weight,layer_energies,power,leak,head", [
    (0.0, False, 0.5, 0.0, False), (3.0, False, 0.5, 0.0, False), (3.0, True, 0.5, 0.0, False),
    (3.0, True, 0.5, 0.1, False), (3.0, True, 0.25, 0.1, True), (3.0, True, 1.0, 0.1, True),
    (0.0, True, 0.5, 0.0, True)])
def test_generator_loss_gradient(backend_name, batch, energy_weight, layer_energies, power, leak, head):
    model = _model(backend_name, "float64", energy_weight=energy_weight, layer_energies=layer_energies,
                   layer_energy_power=power, layer_energy_leak=leak, layer_empty_head=head, layer_empty_weight=2.0,
                   layer_energy_scales=(0.3, 0.6, 0.05) if layer_energies else None)
    trainer = WGANGPTrainer(model, np.random.default_rng(1))
    energy = model.backend.asarray(batch[1].astype(np.float64))
    z, c = trainer.fake_batch(energy)
    response = model.backend.asarray(np.full(8, 0.99))
    empty = model.backend.asarray((np.arange(24).reshape(8, 3) % 5 == 0).astype(np.float64)) if head else None

    def loss_and_grads():
        loss, dx = trainer.generator_loss(z, c, energy, response, empty)
        model.generator.backward(dx)
        return loss, {p: p.grad for p in model.generator.parameters()}

    result = check_parameters(loss_and_grads, model.generator.parameters(), np.random.default_rng(5), name="G")
    assert result.passed(1e-6), result.describe()
    assert (trainer.last_energy_loss > 0) == (energy_weight > 0)
    assert (trainer.last_empty_loss > 0) == head


@pytest.mark.parametrize("layer_energies", [False, True])
def test_energy_term_pulls_the_response_towards_the_real_one(batch, layer_energies):
    model = _model("numpy", energy_weight=50.0, critic_steps=1, lr_g=3e-3, layer_energies=layer_energies)
    trainer = WGANGPTrainer(model, np.random.default_rng(1))
    energies = []
    for _ in range(80):
        energies.append(trainer.train_step(*batch)["g_energy"])
    assert np.mean(energies[-5:]) < 0.7 * np.mean(energies[:5]), (energies[:5], energies[-5:])


def test_five_critic_steps_per_generator_step(batch):
    model = _model("numpy", layer_energies=False, energy_weight=0.0)  # the plain FastCaloGAN losses
    trainer = WGANGPTrainer(model, np.random.default_rng(1))
    before = [p.value.copy() for p in model.generator.parameters()]
    reports = [trainer.train_step(*batch) for _ in range(5)]
    assert ["g_loss" in r for r in reports] == [False] * 4 + [True]
    after = [p.value for p in model.generator.parameters()]
    assert not all(np.array_equal(a, b) for a, b in zip(before, after))
    # the critic learns to tell this real batch from the (fixed-weight) generator's output
    assert reports[-1]["d_wasserstein"] < reports[0]["d_wasserstein"]


def test_energy_point_batches():
    rng = np.random.default_rng(0)
    energy = np.repeat([50.0, 2.0, 10.0], [40, 33, 20])[rng.permutation(93)]
    batches = energy_point_batches(energy, 8, rng)
    points = [set(energy[b]) for b in batches]
    assert all(len(p) == 1 for p in points)
    assert [p.pop() for p in points] == [2.0] * 4 + [10.0] * 2 + [50.0] * 5
    assert energy_point_batches(rng.uniform(1, 100, 500), 8, rng) is None


def _arrays(path):
    with h5py.File(path, "r") as f:
        out = {}
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
        return out, json.loads(f.attrs["trainer_state"])


@pytest.fixture
def tiny_config(tmp_path):
    path = tmp_path / "wgan.json"
    path.write_text(json.dumps(TINY))
    return path


def test_resume_equals_uninterrupted_and_generate(backend_name, tmp_path, tiny_config):
    data = write_showers(tmp_path / "tiny.h5", tiny_showers(96))
    kw = dict(data=data, backend=backend_name, config_file=tiny_config, seed=3)
    train(model_type="wgan-gp", out=tmp_path / "full", epochs=2, **kw)
    train(model_type="wgan-gp", out=tmp_path / "split", epochs=1, **kw)
    result = train(model_type="wgan-gp", out=tmp_path / "split", epochs=2, resume=True, **kw)
    a, state_a = _arrays(tmp_path / "full" / "checkpoint.h5")
    b, state_b = _arrays(tmp_path / "split" / "checkpoint.h5")
    assert sorted(a) == sorted(b) and any(k.startswith("critic/") for k in a)
    for key in a:
        assert np.array_equal(a[key], b[key]), f"{key} differs after resume"
    assert state_a["trainer"] == state_b["trainer"] == {"critic_calls": 8}  # 4 batches x 2 epochs
    assert [r["epoch"] for r in result.history] == [1, 2] and np.isfinite(result.history[-1]["score"])
    header = read_model_header(tmp_path / "split" / "last.h5")
    assert header["model"] == "wgan-gp" and header["config"].latent_dim == 4
    model = load_model(tmp_path / "split" / "last.h5", get_backend(backend_name))
    be = model.backend
    energy = np.array([5.0, 50.0])
    layers = model.generate(be.asarray(model.sample_latent(np.random.default_rng(0), 2)), be.asarray(energy))
    assert [tuple(x.shape) for x in layers] == [(2, 2, 8), (2, 4, 4), (2, 4, 2)]
    assert all(float(be.to_numpy(x).min()) >= 0.0 for x in layers)


def test_training_fits_the_layer_energy_scales_to_the_training_rows(tmp_path, tiny_config):
    from calosim.data.formats import read_showers

    data = write_showers(tmp_path / "tiny.h5", tiny_showers(80))
    cfg = registry.get_model_type("wgan-gp").get_config("small", tiny_config)
    assert cfg.layer_energy.scaled and "layer_energy_scales" not in cfg.to_dict()  # model state, not config
    rows = read_showers(data, 0, 64)
    means = (rows.layer_energies() / (1000 * rows.energy[:, None])).mean(0)
    assert not np.allclose(means, means[0])
    np.testing.assert_allclose(WGANGP.fit(cfg, data, range(0, 64))["layer_energy_scales"], means, rtol=1e-6)
    assert WGANGP.fit(cfg.replace(layer_energy_scaled=False), data, range(0, 64)) == {}
    train(model_type="wgan-gp", out=tmp_path / "run", data=data, backend="numpy", config_file=tiny_config, epochs=1,
          validation_fraction=0.2)
    stored = read_model_header(tmp_path / "run" / "last.h5")["fitted"]["layer_energy_scales"]
    np.testing.assert_allclose(stored, means, rtol=1e-6)
    model = load_model(tmp_path / "run" / "last.h5", get_backend("numpy"))
    np.testing.assert_array_equal(model.layer_scales, stored)
    train(model_type="wgan-gp", out=tmp_path / "run", data=data, backend="numpy", config_file=tiny_config, epochs=2,
          validation_fraction=0.2, resume=True)  # the refitted values equal the run's


def test_model_file_with_the_scales_in_its_config_still_loads(tmp_path, tiny_config):
    """Files written before the scales became model state kept them as the config field layer_energy_scales."""
    import h5py

    model = _model("numpy", layer_energies=True, layer_energy_scaled=True, layer_energy_scales=(0.2, 0.7, 0.1))
    path = save_model(tmp_path / "old.h5", model)
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["config"])
        f.attrs["config"] = json.dumps({**config, "layer_energy_scales": [0.2, 0.7, 0.1]})
        del f["fitted"]
    loaded = load_model(path, get_backend("numpy"))
    np.testing.assert_array_equal(loaded.layer_scales, [0.2, 0.7, 0.1])
    assert loaded.config == model.config


def test_calochallenge_file_trains_and_generates(tmp_path, tiny_config):
    from calosim.data.formats import CALOCHALLENGE, read_showers

    data = write_showers(tmp_path / "challenge.h5", tiny_showers(64), format=CALOCHALLENGE)
    assert read_showers(data).geometry == TINY_GEOMETRY
    train(model_type="wgan-gp", out=tmp_path / "run", data=data, backend="numpy", config_file=tiny_config, epochs=1)
    model = load_model(tmp_path / "run" / "last.h5", get_backend("numpy"))
    assert model.geometry.n_cells == 40


@pytest.mark.parametrize("model_type,overrides", [("wgan-gp", TINY), ("vae", {"latent_dim": 3, "hidden": [8, 6]})])
def test_train_and_generate_commands_on_a_calochallenge_file(tmp_path, model_type, overrides):
    from click.testing import CliRunner

    from calosim.cli.main import main
    from calosim.data.formats import CALOCHALLENGE, read_showers

    data = write_showers(tmp_path / "challenge.h5", tiny_showers(60), format=CALOCHALLENGE)
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(overrides))
    runner = CliRunner()
    result = runner.invoke(main, ["train", "--model-type", model_type, "--data", str(data), "--backend", "numba",
                                  "--config-file", str(cfg), "--epochs", "1", "--batch-size", "16",
                                  "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "epoch 1:" in result.output and "score" in result.output
    assert read_model_header(tmp_path / "run" / "best.h5")["model"] == model_type
    out = tmp_path / "g.h5"
    result = runner.invoke(main, ["generate", "--model", str(tmp_path / "run"), "--backend", "numpy",
                                  "--num-showers", "12", "--energies-from", str(data), "-o", str(out)])
    assert result.exit_code == 0, result.output
    generated = read_showers(out)
    assert len(generated) == 12 and generated.geometry.shapes == TINY_GEOMETRY.shapes
    assert model_type in generated.attrs["producer"]
    np.testing.assert_allclose(generated.energy, read_showers(data, 0, 12).energy, rtol=1e-6)
    with h5py.File(out, "r") as f:  # the training data's layout, as the CaloChallenge tools read it
        assert set(f) == {"showers", "incident_energies"} and f.attrs["format"] == CALOCHALLENGE
        assert f["showers"].shape == (12, TINY_GEOMETRY.n_cells) and f["incident_energies"].shape == (12, 1)
        np.testing.assert_allclose(f["incident_energies"][:, 0], 1000.0 * generated.energy, rtol=1e-6)  # MeV
    report = tmp_path / "report"
    result = runner.invoke(main, ["evaluate", "--reference", str(data), "--generated", str(out), "--out",
                                  str(report)])
    assert result.exit_code == 0, result.output
    assert (report / "metrics.json").is_file()
    result = runner.invoke(main, ["generate", "--model", str(tmp_path / "run"), "--backend", "numpy", "-n", "5",
                                  "--format", "calogan", "-o", str(tmp_path / "g2.h5")])
    assert result.exit_code == 0, result.output
    with h5py.File(tmp_path / "g2.h5", "r") as f:
        assert set(f) == {"layer_0", "layer_1", "layer_2", "energy"}


@pytest.mark.parametrize("power,scales", [(0.5, None), (0.25, None), (0.5, (0.3, 0.6, 0.002))])
def test_layer_energies_are_features_and_set_each_generated_layer_energy(batch, power, scales):
    model = _model("numpy", "float64", layer_energies=True, layer_energy_power=power, layer_energy_scales=scales)
    layers, energy = batch
    x = model.to_training(layers, energy)
    v = model.geometry.n_cells
    assert x.shape == (8, v + 3) and model.critic.input_shape == (v + 4,)
    sums = np.stack([a.reshape(8, -1).sum(1) for a in layers], 1)
    np.testing.assert_allclose(model.layer_fractions(x[:, v:])[0] * 1000 * energy[:, None], sums, rtol=1e-5)
    back = model.to_layers(x, energy.astype(np.float64))  # the real showers come back (cells and energies)
    for a, b in zip(back, layers):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)
    shape = x.copy()
    shape[:, :v] *= 0.9  # another amplitude of the voxels: the layer energies still come from t
    for a, b in zip(model.to_layers(shape, energy.astype(np.float64)), sums.T):
        np.testing.assert_allclose(a.reshape(8, -1).sum(1), b, rtol=1e-5)
    if scales is not None:  # t_l = (E_l / E_inc / s_l)^p
        u = sums / (1000 * energy[:, None]) / np.array(scales)
        np.testing.assert_allclose(x[:, v:], u ** power, rtol=1e-6)
    shape[:4, v + 2] = 0.0  # a layer energy at or below 0 is an empty layer; the other layers keep theirs
    shape[4:6, v + 2] = -0.05
    back = model.to_layers(shape, energy.astype(np.float64))
    np.testing.assert_array_equal(back[2][:6], 0.0)
    np.testing.assert_allclose(back[2][6:].reshape(2, -1).sum(1), sums[6:, 2], rtol=1e-5)
    np.testing.assert_allclose(back[1].reshape(8, -1).sum(1), sums[:, 1], rtol=1e-5)
    fractions, slope = model.layer_fractions(shape[:, v:])
    assert np.all(fractions[:6, 2] == 0) and np.all(slope[:6, 2] == 0) and np.all(slope[6:] > 0)


def test_layer_energy_outputs_leak_below_zero_and_voxels_do_not():
    model = _model("numpy", "float64", layer_energies=True, layer_energy_leak=0.1, layer_empty_head=False)
    head = model.generator.layers[-1]
    v = model.geometry.n_cells
    assert type(head).__name__ == "SplitReLU" and head.n_plain == v
    x = -np.ones((2, v + 3))
    np.testing.assert_allclose(head.forward(x), np.concatenate([np.zeros((2, v)), np.full((2, 3), -0.1)], 1))
    np.testing.assert_allclose(head.backward(np.ones_like(x))[:, v:], 0.1)
    plain = _model("numpy", "float64", layer_energies=True, layer_energy_leak=0.0, layer_empty_head=False)
    assert type(plain.generator.layers[-1]).__name__ == "ReLU"
    with_logits = _model("numpy", "float64", layer_energies=True, layer_energy_leak=0.1, layer_empty_head=True)
    x = -np.ones((2, v + 6))
    np.testing.assert_allclose(with_logits.generator.layers[-1].forward(x)[:, v:],
                               np.concatenate([np.full((2, 3), -0.1), np.full((2, 3), -1.0)], 1))
    assert with_logits.critic.input_shape == (v + 4,) and with_logits.n_features == v + 3


def test_empty_layer_head_draws_empty_layers_with_its_probability():
    model = _model("numpy", "float64", layer_energies=True, layer_empty_head=True)
    be, v = model.backend, model.geometry.n_cells
    last = model.generator.layers[-2]  # the output Dense: its logit biases set P(empty) per layer
    last.params["kernel"].value[:] = 0.0  # every voxel and layer energy 1 (only the head empties layers)
    last.params["bias"].value[:] = 1.0
    last.params["bias"].value[v + 3:] = [-50.0, 0.0, 50.0]  # P(empty): never, half of the time, always
    n = 4000
    z = model.sample_latent(np.random.default_rng(0), n)
    energy = np.full(n, 20.0)
    layers = model.generate(be.asarray(z), be.asarray(energy))
    empty = np.stack([(x.reshape(n, -1).sum(1) == 0) for x in layers], 1)
    assert not empty[:, 0].any() and empty[:, 2].all()
    assert abs(empty[:, 1].mean() - 0.5) < 0.03
    again = model.generate(be.asarray(z), be.asarray(energy))  # the draws are seeded by z
    np.testing.assert_array_equal(again[1], layers[1])


def test_empty_layer_head_learns_the_empty_fraction_of_the_real_showers(batch):
    model = _model("numpy", layer_energies=True, layer_empty_head=True, layer_empty_weight=5.0, critic_steps=1,
                   lr_g=3e-3)
    layers, energy = batch
    layers = [x.copy() for x in layers]
    layers[2][::2] = 0.0  # half of the showers leave layer 2 empty
    trainer = WGANGPTrainer(model, np.random.default_rng(1))
    losses = [trainer.train_step(layers, energy)["g_empty"] for _ in range(200)]
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5]), (losses[:5], losses[-5:])
    out = model.generator_forward(model.backend.asarray(np.random.default_rng(2).standard_normal((400, 4))),
                                  model.condition(np.full(400, float(energy.mean()))), False)
    p = 1.0 / (1.0 + np.exp(-out[:, model.n_features:]))
    assert p[:, 0].mean() < 0.3 and p[:, 1].mean() < 0.3 and 0.35 < p[:, 2].mean() < 0.65, p.mean(0)
