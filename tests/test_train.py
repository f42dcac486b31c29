"""Training: steps that decrease their losses, resume == uninterrupted, NaN stops with the checkpoint intact,
model files round-trip on every CPU backend, config files override the configuration."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from calosim.backends import get_backend
from calosim.checkpoint import load_checkpoint, load_model, model_arrays, read_model_header, save_model
from calosim.data import Showers, write_showers
from calosim.errors import ConfigError, TrainingError
from calosim.geometry import Geometry, LayerGeometry
from calosim.models.calogan import CaloGAN
from calosim.models.config import get_config
from calosim.train import GANTrainer, train

# shapes that relate like CaloGAN's (both attention blocks active), a few hundred cells in all
TINY_GEOMETRY = Geometry("tiny", (LayerGeometry("layer_0", (2, 16), (160.0, 30.0)),
                                  LayerGeometry("layer_1", (4, 4), (120.0, 120.0)),
                                  LayerGeometry("layer_2", (4, 2), (120.0, 240.0))))
TINY_OVERRIDES = {"latent_dim": 8, "g_dense_channels": 3, "g_conv_filters": 3, "g_lc_filters": 2,
                  "d_conv_filters": 3, "d_lc_filters": [3, 2, 2], "mbd_kernels": 3, "mbd_dim": 3,
                  "batch_size": 16, "epochs": 2, "lr_d": 1e-3, "lr_g": 1e-3}


def tiny_showers(n: int = 96, seed: int = 0) -> Showers:
    """Shower-like images: a peaked, E-proportional profile with noise and exact zeros; E ~ U(1, 100) GeV."""
    rng = np.random.default_rng(seed)
    energy = rng.uniform(1.0, 100.0, n).astype(np.float32)
    layers = []
    for fraction, layer in zip((0.2, 0.7, 0.1), TINY_GEOMETRY.layers):
        r, c = layer.shape
        profile = np.exp(-np.add.outer((np.arange(r) - r / 2 + 0.5) ** 2, (np.arange(c) - c / 2 + 0.5) ** 2) / 4)
        x = profile * rng.lognormal(0.0, 0.3, (n, r, c))
        x[rng.random(x.shape) < 0.3] = 0.0
        x *= (fraction * 1000.0 * energy)[:, None, None] / x.reshape(n, -1).sum(axis=1)[:, None, None]
        layers.append(x.astype(np.float32))
    return Showers(layers, energy, TINY_GEOMETRY, None, "e+", {"seed": seed})


@pytest.fixture
def tiny_data(tmp_path):
    return write_showers(tmp_path / "tiny.h5", tiny_showers())


@pytest.fixture
def tiny_config_file(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY_OVERRIDES))
    return path


def _tiny_model(backend_name, seed=0, **overrides):
    cfg = get_config("small").replace(**{**TINY_OVERRIDES, **overrides})
    return CaloGAN.build(cfg, TINY_GEOMETRY, get_backend(backend_name), np.random.default_rng(seed), "e+", (1.0, 100.0))


def _batch(be, showers, scale=1000.0):
    return [be.asarray(x[..., None] / scale) for x in showers.layers], be.asarray(showers.energy)


def test_training_steps_decrease_their_losses(backend_name):
    model = _tiny_model(backend_name)
    be = model.backend
    trainer = GANTrainer(model, np.random.default_rng(1))
    real, e_real = _batch(be, tiny_showers(16, seed=3))
    # D on real (target 1): the same batch scores better after a few steps
    before = trainer.d_loss(real, e_real, 1.0)[0]
    for _ in range(3):
        trainer.d_step(real, e_real, 1.0)
    assert trainer.d_loss(real, e_real, 1.0)[0] < before
    # D on fake (target 0)
    z, e = trainer.sample_inputs(16)
    fake = model.generator.forward([z, e], True)
    before = trainer.d_loss(fake, e, 0.0)[0]
    for _ in range(3):
        trainer.d_step(fake, e, 0.0)
    assert trainer.d_loss(fake, e, 0.0)[0] < before
    # G (target real, plus the energy term) at fixed z, E and a fixed D
    weight = model.config.energy_loss_weight

    def g_total():
        bce, mae = trainer.g_loss(z, e)[:2]
        return bce + weight * mae

    before = g_total()
    d_before = model_arrays(model.discriminator)
    for _ in range(3):
        trainer.g_step(z, e)
    assert g_total() < before
    d_after = model_arrays(model.discriminator)
    assert all(np.array_equal(d_before[k], d_after[k]) for k in d_before), "the G step must not touch D"


def _run_arrays(run_dir):
    with h5py.File(run_dir / "checkpoint.h5", "r") as f:
        out = {}
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
        return out, json.loads(f.attrs["trainer_state"])


def test_resume_equals_uninterrupted(backend_name, tiny_data, tiny_config_file, tmp_path):
    kw = dict(data=tiny_data, backend=backend_name, config_file=tiny_config_file, seed=7)
    full = train(tmp_path / "full", epochs=2, **kw)
    train(tmp_path / "split", epochs=1, **kw)
    resumed = train(tmp_path / "split", epochs=2, resume=True, **kw)
    a, state_a = _run_arrays(tmp_path / "full")
    b, state_b = _run_arrays(tmp_path / "split")
    assert sorted(a) == sorted(b) and len(a) > 50
    for key in a:
        assert np.array_equal(a[key], b[key]), f"{key} differs after resume"
    assert state_a["rng"] == state_b["rng"] and state_b["epochs_done"] == 2
    assert [r["epoch"] for r in full.history] == [1, 2] and [r["epoch"] for r in resumed.history] == [1, 2]
    log = [json.loads(line) for line in (tmp_path / "split" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2] and all(np.isfinite(r["score"]) for r in log)
    assert (tmp_path / "split" / "best.h5").is_file() and (tmp_path / "split" / "last.h5").is_file()


def test_existing_run_needs_resume(tiny_data, tiny_config_file, tmp_path):
    kw = dict(data=tiny_data, backend="numpy", config_file=tiny_config_file)
    train(tmp_path / "run", epochs=1, **kw)
    with pytest.raises(TrainingError, match="--resume"):
        train(tmp_path / "run", epochs=2, **kw)
    with pytest.raises(TrainingError, match="another config"):
        train(tmp_path / "run", epochs=2, resume=True, batch_size=8, **kw)


def test_nan_loss_stops_with_checkpoint_intact(tiny_data, tiny_config_file, tmp_path, monkeypatch):
    import calosim.train as train_module

    kw = dict(data=tiny_data, backend="numpy", config_file=tiny_config_file)
    train(tmp_path / "run", epochs=1, **kw)
    before, _ = _run_arrays(tmp_path / "run")
    real_bce = train_module.bce_with_logits
    calls = {"n": 0}

    def poisoned(logits, targets, xp):
        calls["n"] += 1
        loss, grad = real_bce(logits, targets, xp)
        return (float("nan"), grad) if calls["n"] == 5 else (loss, grad)

    monkeypatch.setattr(train_module, "bce_with_logits", poisoned)
    with pytest.raises(TrainingError, match=r"epoch 2, step \d+: the .* loss is nan.*after epoch 1\) is intact"):
        train(tmp_path / "run", epochs=2, resume=True, **kw)
    after, state = _run_arrays(tmp_path / "run")
    assert state["epochs_done"] == 1
    assert all(np.array_equal(before[k], after[k]) for k in before)
    monkeypatch.setattr(train_module, "bce_with_logits", real_bce)
    assert train(tmp_path / "run", epochs=2, resume=True, **kw).epochs_done == 2  # and it resumes from there


@pytest.mark.parametrize("other", ["numpy", "numba"])
def test_model_file_round_trip(backend_name, other, tmp_path):
    model = _tiny_model(backend_name)
    be = model.backend
    trainer = GANTrainer(model, np.random.default_rng(2))
    trainer.train_step(*_batch(be, tiny_showers(16)))  # moving statistics away from their initial values
    path = save_model(tmp_path / "m.h5", model, epoch=1)
    loaded = load_model(path, get_backend(other))
    rng = np.random.default_rng(4)
    z, e = rng.standard_normal((5, model.config.latent_dim)), rng.uniform(1, 100, 5)
    images = _batch(be, tiny_showers(5, seed=9))[0]
    outs = []
    for m in (model, loaded):
        mb = m.backend
        gen = [mb.to_numpy(x) for x in m.generate(mb.asarray(z), mb.asarray(e))]
        logits = mb.to_numpy(m.discriminator.forward([*[mb.asarray(be.to_numpy(x)) for x in images],
                                                      mb.asarray(e)], training=False))
        outs.append(gen + [logits])
    for x, y in zip(*outs):
        if other == backend_name:
            assert np.array_equal(x, y)
        else:
            np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-4 * float(np.abs(x).max()))
    # the layout is readable with h5py alone
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "calosim-model" and json.loads(f.attrs["geometry"])["name"] == "tiny"
        assert tuple(f.attrs["energy_range"]) == (1.0, 100.0) and f.attrs["image_scale"] == 1000.0
        kernel = f["generator/params/generator.stream0.0.dense/kernel"]
        assert kernel.shape == (8, 18 * 4 * 3)
        assert "generator/state/generator.stream1.4.batchnorm/moving_mean" in f
    assert read_model_header(path)["config"] == model.config


def test_checkpoint_mismatch_is_an_error(tiny_data, tiny_config_file, tmp_path):
    train(tmp_path / "run", data=tiny_data, backend="numpy", config_file=tiny_config_file, epochs=1)
    other = _tiny_model("numpy", g_lc_filters=3)
    with pytest.raises(TrainingError):
        load_checkpoint(tmp_path / "run" / "checkpoint.h5", other, {})


def test_config_files(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('[model]\nlr_g = 1e-4\nd_lc_filters = [4, 4, 4]\nenergy_range = [10, 50]\n')
    cfg = get_config("small", toml, epochs=3)
    assert cfg.lr_g == 1e-4 and cfg.d_lc_filters == (4, 4, 4) and cfg.energy_range == (10.0, 50.0) and cfg.epochs == 3
    bad = tmp_path / "bad.json"
    bad.write_text('{"lr_gen": 1}')
    with pytest.raises(ConfigError, match="lr_gen"):
        get_config("small", bad)
    with pytest.raises(ConfigError, match="unknown config"):
        get_config("huge")
    assert get_config("calogan").latent_dim == 1024
