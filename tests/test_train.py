"""Training: steps that decrease their losses, resume == uninterrupted, NaN stops with the checkpoint intact,
model files round-trip on every CPU backend, config files override the configuration."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from calosim.backends import get_backend
from calosim.data import Showers, write_showers
from calosim.errors import ConfigError, DataError, TrainingError
from calosim.geometry import Geometry, LayerGeometry
from calosim.models.calogan import CaloGAN
from calosim.models.calogan.generator import stream_input_dim
from calosim.models.calogan.training import GANTrainer
from calosim.models.files import load_model, model_arrays, read_model_header, save_model
from calosim.training import initial_model, train
from calosim.training.checkpoint import load_checkpoint

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
    cfg = CaloGAN.get_config("small").replace(**{**TINY_OVERRIDES, **overrides})
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
    weight = model.config.training.energy_loss_weight

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
    import calosim.models.calogan.training as train_module

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
        assert kernel.shape == (stream_input_dim(model.config), 18 * 4 * 3)
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
    cfg = CaloGAN.get_config("small", toml, epochs=3)
    assert cfg.training.lr_g == 1e-4 and cfg.architecture.d_lc_filters == (4, 4, 4)
    assert cfg.energy_range == (10.0, 50.0) and cfg.epochs == 3
    bad = tmp_path / "bad.json"
    bad.write_text('{"lr_gen": 1}')
    with pytest.raises(ConfigError, match="lr_gen"):
        CaloGAN.get_config("small", bad)
    with pytest.raises(ConfigError, match="unknown config"):
        CaloGAN.get_config("huge")
    assert CaloGAN.get_config("calogan").latent_dim == 1024


def _float64_tiny_model(**overrides):
    cfg = CaloGAN.get_config("small").replace(**{**TINY_OVERRIDES, **overrides})
    be = get_backend("numpy", "float64")
    return CaloGAN.build(cfg, TINY_GEOMETRY, be, np.random.default_rng(0), "e+", (1.0, 100.0))


def test_precise_bn_makes_inference_match_training():
    """After recalibrating on a fixed batch, the inference-mode generator reproduces the training-mode one on
    that batch (before the final activation); no weight changes, the AnnealedReLU schedule does not advance."""
    model = _float64_tiny_model(g_output_leak=0.3, g_output_leak_forwards=50, bn_momentum=0.9)
    gen, be = model.generator, model.backend
    rng = np.random.default_rng(5)
    z, e = be.asarray(rng.standard_normal((16, 8))), be.asarray(rng.uniform(1.0, 100.0, 16))
    for _ in range(3):  # move the weights and statistics away from their initial values
        GANTrainer(model, np.random.default_rng(1)).train_step(*_batch(be, tiny_showers(16, seed=3)))
    weights = model_arrays(gen)
    slopes = [float(r.state["slope"][0]) for r in gen.relus]
    norms = [layer for layer in gen.walk() if type(layer).__name__ == "BatchNorm"]
    assert norms

    def pre_activation(training):
        gen.forward([z, e], training)
        return [np.array(x) for x in gen.pre_activation]

    gen.forward([z, e], False)
    before = [np.array(x) for x in gen.pre_activation]
    from calosim.models.calogan.training import recalibrate_batchnorm
    recalibrate_batchnorm(gen, lambda: gen.forward([z, e], True), 4)
    assert [float(r.state["slope"][0]) for r in gen.relus] == slopes, "the annealing schedule advanced"
    assert all(bn.momentum == 0.9 and bn.update_statistics for bn in norms)
    after_weights = model_arrays(gen)
    assert all(np.array_equal(weights[k], after_weights[k]) for k in weights if "moving" not in k)
    inference = pre_activation(False)
    training = pre_activation(True)
    assert any(not np.allclose(b, t, atol=1e-6) for b, t in zip(before, training)), "already equal before"
    for i, t in zip(inference, training):
        np.testing.assert_allclose(i, t, rtol=1e-9, atol=1e-12)


def test_precise_bn_runs_in_the_loop(tiny_data, tiny_config_file, tmp_path):
    seen = []
    from calosim.models.calogan.training import CaloGANTrainer
    original = CaloGANTrainer.end_epoch

    def spy(self):
        seen.append(self.model.config.precise_bn.batches)
        original(self)

    CaloGANTrainer.end_epoch = spy
    try:
        train(tmp_path / "run", data=tiny_data, backend="numpy", config_file=tiny_config_file, epochs=1)
    finally:
        CaloGANTrainer.end_epoch = original
    assert seen == [CaloGAN.get_config("small").precise_bn.batches] and seen[0] > 0
    assert CaloGAN.get_config("calogan").precise_bn is None  # the paper's config is unchanged


def _occupancy_surrogate(xs, frozen_diffs, tau):
    """The function whose exact gradient the straight-through occupancy backward is: sum_l sum_i 2 d_il / N
    * mean_c sigmoid(x_ilc / tau), with d_il = h_il - t_il held fixed."""
    total = 0.0
    for x, d in zip(xs, frozen_diffs):
        n = x.shape[0]
        soft = (1.0 / (1.0 + np.exp(-x.reshape(n, -1) / tau))).mean(axis=1)
        total += float((2.0 * d * soft).sum() / n)
    return total


def test_occupancy_fraction_loss_value_and_straight_through_gradient():
    """The loss is the per-shower squared occupancy miss; its backward is the exact gradient (central
    differences, float64) of the sigmoid surrogate with the misses held fixed, alone and through the generator
    (dL/dz); and a small step along it lowers the loss itself."""
    from calosim.losses import occupancy_fraction_loss

    rng = np.random.default_rng(2)
    xs = [rng.normal(0.0, 0.5, (3, 2, 4, 1)), rng.normal(0.2, 0.5, (3, 4, 4, 1))]
    targets = np.array([[0.8, 0.3], [0.1, 0.9], [0.5, 0.5]])
    tau, h = 0.4, 1e-6
    loss, grads = occupancy_fraction_loss(xs, targets, tau, np)
    diffs = [(x.reshape(3, -1) > 0).mean(axis=1) - targets[:, i] for i, x in enumerate(xs)]
    assert loss == pytest.approx(sum(float((d**2).mean()) for d in diffs), rel=1e-12)
    for x, g in zip(xs, grads):
        num = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            old = x[idx]
            x[idx] = old + h
            up = _occupancy_surrogate(xs, diffs, tau)
            x[idx] = old - h
            down = _occupancy_surrogate(xs, diffs, tau)
            x[idx] = old
            num[idx] = (up - down) / (2 * h)
        np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-10)
    stepped = [x - 2.0 * g / np.abs(g).max() for x, g in zip(xs, grads)]
    assert occupancy_fraction_loss(stepped, targets, tau, np)[0] < loss

    model = _float64_tiny_model()
    gen = model.generator
    z, e = rng.standard_normal((4, 8)), rng.uniform(1.0, 100.0, 4)
    tau = 0.02  # of the order of the initial generator's outputs, so that the sigmoid is not saturated
    targets = np.tile([0.9, 0.1, 0.5], (4, 1))
    gen.forward([z, e], True)
    diffs = [(x.reshape(4, -1) > 0).mean(axis=1) - targets[:, i] for i, x in enumerate(gen.pre_activation)]

    def surrogate_of(zz):
        gen.forward([zz, e], True)
        return _occupancy_surrogate(gen.pre_activation, diffs, tau)

    images = gen.forward([z, e], True)
    _, d_pre = occupancy_fraction_loss(gen.pre_activation, targets, tau, np)
    dz = gen.backward([np.zeros_like(x) for x in images], d_pre)
    num = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        zp, zm = z.copy(), z.copy()
        zp[idx] += h
        zm[idx] -= h
        num[idx] = (surrogate_of(zp) - surrogate_of(zm)) / (2 * h)
    np.testing.assert_allclose(dz, num, rtol=1e-5, atol=1e-8)


def test_occupancy_term_in_the_generator_step():
    """With the term on, the generator steps run at the real batch's energies and report the term."""
    model = _float64_tiny_model(g_sparsity_loss_weight=1.0, g_sparsity_tau=0.02)
    trainer = GANTrainer(model, np.random.default_rng(1))
    images, energy = _batch(model.backend, tiny_showers(16, seed=3))
    seen = []
    original = trainer.g_step
    trainer.g_step = lambda z, e, *args: seen.append(np.array(e)) or original(z, e, *args)
    losses = trainer.train_step(images, energy)
    assert np.isfinite(losses["g_occupancy"]) and losses["g_occupancy"] > 0
    assert len(seen) == model.config.training.generator_steps and all(np.array_equal(e, energy) for e in seen)
    off = _float64_tiny_model(g_sparsity_loss_weight=0.0)
    assert "g_occupancy" not in GANTrainer(off, np.random.default_rng(1)).train_step(
        *_batch(model.backend, tiny_showers(16, seed=3)))


def test_validation_score_weights_the_response():
    from calosim.training.validation import validation_score

    rng = np.random.default_rng(0)
    ref = {"response": rng.normal(1.0, 0.05, 500), "f_0": rng.random(500)}
    gen = {"response": ref["response"] * 1.02, "f_0": ref["f_0"]}
    one, six = validation_score(gen, ref, response_weight=1.0), validation_score(gen, ref)
    assert six["score"] - one["score"] == pytest.approx(5 * 0.02, rel=1e-9)


def test_energy_ratio_term_gradient():
    """d(energy terms)/d(cell sums) = w_e sign(s - E) / n + w_r sign(s / E - 1) / (n E)."""
    model = _float64_tiny_model(energy_loss_weight=0.5, energy_ratio_loss_weight=2.0)
    trainer = GANTrainer(model, np.random.default_rng(1))
    z, e = trainer.sample_inputs(16)
    _, mae, images, _, ds, values = trainer.g_loss(z, e, {"g_energy_ratio_mae": 1.0})
    sums = sum(x.reshape(16, -1).sum(axis=1) for x in images)
    expected = 0.5 * np.sign(sums - e) / 16 + 2.0 * np.sign(sums / e - 1) / (16 * e)
    np.testing.assert_allclose(ds, expected, rtol=1e-12)
    assert values["g_energy_ratio_mae"] == pytest.approx(np.abs(sums / e - 1).mean(), rel=1e-12)
    _, _, images9, _, ds9, _ = trainer.g_loss(z, e, {"g_energy_ratio_mae": 0.9})  # the real batch's response
    sums9 = sum(x.reshape(16, -1).sum(axis=1) for x in images9)
    np.testing.assert_allclose(ds9, 0.5 * np.sign(sums9 - e) / 16 + 2.0 * np.sign(sums9 / e - 0.9) / (16 * e),
                               rtol=1e-12)
    assert mae == pytest.approx(np.abs(sums - e).mean(), rel=1e-12)
    losses = trainer.train_step(*_batch(model.backend, tiny_showers(16, seed=3)))
    assert np.isfinite(losses["g_energy_ratio_mae"])


def test_initial_model_is_the_run_starting_point(tiny_data, tmp_path):
    """With zero learning rates a run's weights never move, so its last.h5 holds the weights it started from:
    initial_model must rebuild exactly those (and differ from another seed's)."""
    frozen = tmp_path / "frozen.json"
    frozen.write_text(json.dumps({**TINY_OVERRIDES, "lr_d": 0.0, "lr_g": 0.0}))
    train(tmp_path / "run", data=tiny_data, backend="numpy", config_file=frozen, epochs=1, seed=5)
    last = load_model(tmp_path / "run" / "last.h5", get_backend("numpy"))
    start = initial_model(tmp_path / "run", backend="numpy")
    assert start.config == last.config and start.geometry == last.geometry
    for net in ("generator", "discriminator"):
        a, b = getattr(start, net).parameters(), getattr(last, net).parameters()
        assert [p.name for p in a] == [p.name for p in b]
        for p, q in zip(a, b):
            np.testing.assert_array_equal(p.value, q.value, err_msg=p.name)
    train(tmp_path / "other", data=tiny_data, backend="numpy", config_file=frozen, epochs=1, seed=6)
    other = initial_model(tmp_path / "other", backend="numpy")
    assert not np.array_equal(other.generator.parameters()[0].value, start.generator.parameters()[0].value)
    with pytest.raises(DataError, match="run.json"):
        initial_model(tmp_path, backend="numpy")


def test_learning_rates_fall_linearly_over_the_epochs(tiny_data, tmp_path):
    """lr_final_fraction f: epoch k of K trains at lr * (1 - (1 - f) (k - 1) / (K - 1)), both networks; and the
    run applies it (the first and the last epoch's rates are seen by the optimisers)."""
    from calosim.models.calogan.training import CaloGANTrainer

    model = _float64_tiny_model(lr_final_fraction=0.1)
    trainer = CaloGANTrainer(model, np.random.default_rng(0))
    cfg = model.config
    for epoch, factor in ((1, 1.0), (3, 1.0 - 0.9 * 2 / 4), (5, 0.1)):
        trainer.start_epoch(epoch, 5)
        assert trainer.gan.opt_g.lr == pytest.approx(cfg.training.lr_g * factor, rel=1e-12)
        assert trainer.gan.opt_d.lr == pytest.approx(cfg.training.lr_d * factor, rel=1e-12)
    seen = []
    original = CaloGANTrainer.train_step

    def spy(self, *args):
        seen.append((self.gan.opt_g.lr, self.gan.opt_d.lr))
        return original(self, *args)

    CaloGANTrainer.train_step = spy
    config = tmp_path / "decay.json"
    config.write_text(json.dumps({**TINY_OVERRIDES, "lr_final_fraction": 0.25}))
    try:
        train(tmp_path / "run", data=tiny_data, backend="numpy", config_file=config, epochs=3)
    finally:
        CaloGANTrainer.train_step = original
    lr_g, lr_d = TINY_OVERRIDES["lr_g"], TINY_OVERRIDES["lr_d"]
    assert seen[0] == pytest.approx((lr_g, lr_d)) and seen[-1] == pytest.approx((0.25 * lr_g, 0.25 * lr_d))
    with pytest.raises(ConfigError, match="lr_decay: final_fraction"):
        CaloGAN.get_config("small", lr_final_fraction=0.0)
