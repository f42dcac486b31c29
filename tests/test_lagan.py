"""LAGAN: the 25 x 25 architecture, whole-loss gradients through both networks, label flips, the geometry
check, and train / resume / save / load / generate on a single-layer 25 x 25 file."""

from __future__ import annotations

import json

import numpy as np
import pytest
from family_helpers import check_parameters, tiny_lagan_showers

from calosim.backends import get_backend
from calosim.data import write_showers
from calosim.errors import ConfigError
from calosim.geometry import calogan_geometry, single_layer_geometry
from calosim.models import registry
from calosim.models.files import load_model, save_model
from calosim.models.lagan import LAGAN, LAGANTrainer
from calosim.training import train

TINY = {"latent_dim": 4, "g_dense_channels": 2, "g_conv_filters": 2, "g_lc_filters": 2, "d_conv_filters": 2,
        "d_lc_filters": 2, "mbd_kernels": 2, "mbd_dim": 2, "batch_size": 10, "epochs": 2, "dropout": 0.0}
GEOMETRY = single_layer_geometry(25, 25)


def _model(backend_name="numpy", dtype="float32", **overrides):
    cfg = registry.get_model_type("lagan").get_config("small").replace(**{**TINY, **overrides})
    return LAGAN.build(cfg, GEOMETRY, get_backend(backend_name, dtype), np.random.default_rng(0), "e+", (1.0, 100.0))


def test_reference_architecture_shapes():
    kind = registry.get_model_type("lagan")
    model = kind.build(kind.get_config("lagan"), GEOMETRY, get_backend("numpy"), np.random.default_rng(0))
    shapes = [layer.output_shape for layer in model.generator.body.layers]
    assert shapes[1] == (7, 7, 128) and shapes[5] == (14, 14, 64) and shapes[7] == (14, 14, 6)
    assert shapes[-1] == (25, 25, 1) and model.generator.embedding.params["embedding"].value.shape == (1, 200)
    stream = [layer.output_shape for layer in model.discriminator.stream.layers]
    assert stream[-2] == (3, 3, 8) and model.discriminator.mbd.output_shape == (20,)
    t = model.config.training
    assert (t.lr_d, t.beta1, t.batch_size, t.label_flip) == (2e-4, 0.5, 100, 0.05)
    with pytest.raises(ConfigError, match="one 25 x 25 layer"):
        kind.build(kind.get_config("small"), calogan_geometry(), get_backend("numpy"), np.random.default_rng(0))


def test_generator_gradient_through_the_discriminator(backend_name):
    model = _model(backend_name, "float64", n_classes=2)
    be = model.backend
    trainer = LAGANTrainer(model, np.random.default_rng(1))
    rng = np.random.default_rng(2)
    z = be.asarray(rng.standard_normal((6, 4)))
    labels = np.array([0, 1, 1, 0, 1, 0])
    e = be.asarray(rng.uniform(5, 90, 6))
    targets, aux = be.asarray(np.ones(6)), be.asarray(labels.astype(float))
    params = model.generator.parameters() + model.discriminator.parameters()

    def loss_and_grads():
        images = model.generator_forward(z, labels, e, True)
        loss, _, _, dl = trainer.d_loss(images, e, targets, aux)
        d_images = model.discriminator.backward(dl)[0]
        grads = {p: p.grad for p in model.discriminator.parameters()}
        model.generator.backward(d_images)
        grads.update({p: p.grad for p in model.generator.parameters()})
        return loss, grads

    # Loose: thousands of ReLU / LeakyReLU units and the minibatch discrimination's L1 distances put kinks
    # within a finite-difference step of some elements (errors ~1e-3 that do not shrink with h for some seeds);
    # every layer, the generator and the discriminator are checked at 1e-6 in calosim.selftest.
    result = check_parameters(loss_and_grads, params, np.random.default_rng(3), name="lagan")
    assert result.passed(2e-2), result.describe()


def test_train_step_updates_both_networks():
    model = _model()
    trainer = LAGANTrainer(model, np.random.default_rng(1))
    before = [p.value.copy() for p in model.parameters()]
    s = tiny_lagan_showers(10)
    out = [trainer.train_step(s.layers, s.energy) for _ in range(3)]
    assert all(np.isfinite(list(o.values())).all() for o in out)
    changed = {p.name.split(".")[0].split("/")[0] for p, b in zip(model.parameters(), before)
               if not np.array_equal(p.value, b)}
    assert changed == {"generator", "discriminator"}


@pytest.fixture
def tiny_config(tmp_path):
    path = tmp_path / "lagan.json"
    path.write_text(json.dumps({**TINY, "dropout": 0.2}))
    return path


def test_resume_equals_uninterrupted_and_generate(tmp_path, tiny_config):
    data = write_showers(tmp_path / "single.h5", tiny_lagan_showers(40))
    kw = dict(data=data, backend="numba", config_file=tiny_config, seed=2)
    train(model_type="lagan", out=tmp_path / "full", epochs=2, **kw)
    train(model_type="lagan", out=tmp_path / "split", epochs=1, **kw)
    train(model_type="lagan", out=tmp_path / "split", epochs=2, resume=True, **kw)
    a = load_model(tmp_path / "full" / "last.h5", get_backend("numpy"))
    b = load_model(tmp_path / "split" / "last.h5", get_backend("numpy"))
    for p, q in zip(a.parameters(), b.parameters()):
        assert np.array_equal(p.value, q.value), p.name
    be = b.backend
    layers = b.generate(be.asarray(b.sample_latent(np.random.default_rng(0), 2)), be.asarray(np.array([3.0, 60.0])))
    assert layers[0].shape == (2, 25, 25) and layers[0].min() >= 0


def test_generate_command_dispatches_on_the_model_file(tmp_path, tiny_config):
    from calosim.data.formats import read_showers
    from calosim.sampling import generate

    data = write_showers(tmp_path / "single.h5", tiny_lagan_showers(30))
    train(model_type="lagan", out=tmp_path / "run", data=data, backend="numpy", config_file=tiny_config, epochs=1)
    result = generate(tmp_path / "run", tmp_path / "g.h5", num_showers=7, backend="numpy", energy=20.0)
    generated = read_showers(result.path)
    assert generated.geometry.shapes == ((25, 25),) and len(generated) == 7 and "lagan" in generated.attrs["producer"]


@pytest.mark.parametrize("fraction", [0.5, 0.2])
def test_two_class_model_generates_both_classes_in_the_requested_proportion(tmp_path, fraction):
    from calosim.data.formats import read_labels, read_showers
    from calosim.sampling import generate

    model = _model("numba", n_classes=2)
    save_model(tmp_path / "two.h5", model)
    n = 3000
    result = generate(tmp_path / "two.h5", tmp_path / "g.h5", num_showers=n, backend="numba", energy=20.0,
                      class_fraction=fraction, batch_size=700)
    labels = read_labels(result.path)
    assert len(labels) == n and set(np.unique(labels)) == {0, 1}
    assert abs(labels.mean() - fraction) < 4 * np.sqrt(fraction * (1 - fraction) / n)  # binomial, 4 sigma
    # each shower is generated with its own class: regenerating class by class gives the same images
    showers = read_showers(result.path)
    be = model.backend
    z = np.random.default_rng(np.random.SeedSequence(0).spawn(3)[0]).standard_normal((700, model.latent_dim))
    for label in (0, 1):
        images = model.generate(be.asarray(z), be.asarray(np.full(700, 20.0)), labels=np.full(700, label))[0]
        rows = labels[:700] == label
        np.testing.assert_allclose(showers.layers[0][:700][rows], be.to_numpy(images)[rows], rtol=1e-4, atol=1e-3)


def _jet_file(path, n=30, energy=False, label="signal"):
    import h5py

    rng = np.random.default_rng(4)
    images = rng.exponential(1.0, (n, 25, 25)) * (rng.random((n, 25, 25)) < 0.2)
    images[:, 12, 12] += 50.0
    with h5py.File(path, "w") as f:
        f.create_dataset("image", data=images.astype(np.float32))
        f.create_dataset(label, data=(np.arange(n) % 2).astype(np.float64))
        if energy:
            f.create_dataset("energy", data=np.full(n, 300.0, np.float32))
    return path, images


def test_jet_image_file_is_read_with_labels(tmp_path):
    from calosim.data.formats import JET_IMAGE, detect_format, read_labels, read_showers

    path, images = _jet_file(tmp_path / "jets.h5", label="y")
    assert detect_format(path) == JET_IMAGE
    s = read_showers(path, 2, 7)
    assert s.geometry.shapes == ((25, 25),) and len(s) == 5
    np.testing.assert_allclose(s.layers[0], images[2:7] * 1000.0, rtol=1e-6)
    np.testing.assert_allclose(s.energy, images[2:7].reshape(5, -1).sum(axis=1), rtol=1e-5)  # default: sum, GeV
    np.testing.assert_array_equal(read_labels(path, 2, 7), [0, 1, 0, 1, 0])
    path, _ = _jet_file(tmp_path / "jets_e.h5", energy=True)
    assert np.all(read_showers(path).energy == 300.0)


def test_two_class_training_on_a_jet_image_file(tmp_path):
    from calosim.errors import DataError

    path, _ = _jet_file(tmp_path / "jets.h5")
    cfg = tmp_path / "two.json"
    cfg.write_text(json.dumps({**TINY, "n_classes": 2, "energy_weight": 1.0}))
    result = train(model_type="lagan", out=tmp_path / "run", data=path, backend="numpy", config_file=cfg, epochs=1)
    assert result.history[0]["steps"] == 2 and np.isfinite(result.history[0]["g_energy"])
    model = load_model(tmp_path / "run" / "last.h5", get_backend("numpy"))
    assert model.config.architecture.n_classes == 2
    with pytest.raises(DataError, match="no class labels"):
        train(model_type="lagan", out=tmp_path / "run2", data=write_showers(tmp_path / "s.h5", tiny_lagan_showers(30)),
                         backend="numpy", config_file=cfg, epochs=1)


def test_energy_term_gradient_and_output_gain():
    model = _model("numpy", "float64", energy_weight=2.0)
    trainer = LAGANTrainer(model, np.random.default_rng(1))
    rng = np.random.default_rng(5)
    fake, real = rng.random((4, 25, 25, 1)), rng.random((4, 25, 25, 1))
    e = rng.uniform(5, 90, 4)
    loss, grad = trainer.energy_loss(fake, real, e)
    direction = rng.standard_normal(fake.shape)
    h = 1e-6
    numeric = (trainer.energy_loss(fake + h * direction, real, e)[0]
               - trainer.energy_loss(fake - h * direction, real, e)[0]) / (2 * h)
    assert abs(numeric - float((grad * direction).sum())) < 1e-6 * max(1.0, abs(numeric))
    base, scaled = _model("numpy", g_output_gain=1.0), _model("numpy", g_output_gain=0.5)
    k0 = base.generator.body.layers[-2].params["kernel"].value
    np.testing.assert_allclose(scaled.generator.body.layers[-2].params["kernel"].value, 0.5 * k0, rtol=1e-6)


@pytest.mark.parametrize("log_epsilon", [0.0, 1.0])
def test_discriminator_gradients_with_a_log_input(log_epsilon):
    """d_log_epsilon_mev: D's stream sees log(1 + image / eps); its weight and input gradients (through the
    log, beside the linear response feature) against float64 finite differences."""
    model = _model("numpy", "float64", d_log_epsilon_mev=log_epsilon)
    trainer = LAGANTrainer(model, np.random.default_rng(1))
    rng = np.random.default_rng(2)
    images = np.abs(rng.standard_normal((6, 25, 25, 1))) * 0.01 * (rng.random((6, 25, 25, 1)) < 0.5)
    e, targets, aux = rng.uniform(5, 90, 6), np.ones(6), np.zeros(6)
    params = model.discriminator.parameters()

    def loss_and_grads():
        loss, _, _, dl = trainer.d_loss(images, e, targets, aux)
        model.discriminator.backward(dl)
        return loss, {p: p.grad for p in params}

    result = check_parameters(loss_and_grads, params, np.random.default_rng(3), name="D")
    assert result.passed(2e-2), result.describe()  # loose for the kinks, as in the whole-model check above
    _, _, _, dl = trainer.d_loss(images, e, targets, aux)
    d_images = model.discriminator.backward(dl)[0]
    direction, h = rng.standard_normal(images.shape) * (images > 0), 1e-7
    plus = trainer.d_loss(images + h * direction, e, targets, aux)[0]
    minus = trainer.d_loss(images - h * direction, e, targets, aux)[0]
    numeric, analytic = (plus - minus) / (2 * h), float((d_images * direction).sum())
    assert abs(numeric - analytic) < 1e-6 * max(1.0, abs(numeric)), (numeric, analytic)


def test_mean_image_term_gradient_and_pull():
    model = _model("numpy", "float64", mean_image_weight=1.0)
    trainer = LAGANTrainer(model, np.random.default_rng(1))
    rng = np.random.default_rng(6)
    fake, real = rng.random((6, 25, 25, 1)), rng.random((3, 25, 25, 1))
    e_fake, e_real = rng.uniform(5, 90, 6), rng.uniform(5, 90, 3)
    loss, grad = trainer.mean_image_loss(fake, real, e_fake, e_real)
    direction, h = rng.standard_normal(fake.shape), 1e-6
    numeric = (trainer.mean_image_loss(fake + h * direction, real, e_fake, e_real)[0]
               - trainer.mean_image_loss(fake - h * direction, real, e_fake, e_real)[0]) / (2 * h)
    assert abs(numeric - float((grad * direction).sum())) < 1e-6 * max(1.0, abs(numeric))
    same = np.concatenate([real, real])  # fakes equal to the real images at their energies: no loss
    assert trainer.mean_image_loss(same, real, np.concatenate([e_real, e_real]), e_real)[0] < 1e-12
    model = _model("numpy", mean_image_weight=100.0, lr_g=2e-3)  # the term dominates: it must pull
    trainer = LAGANTrainer(model, np.random.default_rng(1))
    s = tiny_lagan_showers(10, seed=2)
    first = trainer.train_step(s.layers, s.energy)["g_mean_image"]
    for _ in range(20):
        last = trainer.train_step(s.layers, s.energy)["g_mean_image"]
    assert last < 0.8 * first, (first, last)
