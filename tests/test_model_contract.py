"""The model contract is all the loop, the model files and the sampler need: a new model type, written here in
a few dozen lines and registered, trains, checkpoints, resumes, saves, loads and generates through them
unchanged."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from family_helpers import TINY_GEOMETRY, tiny_showers

from calosim.backends import get_backend
from calosim.data import read_showers, write_showers
from calosim.layers import Dense, ReLU, Sequential
from calosim.models import registry
from calosim.models.base import ConfigMixin, ShowerModel, Trainer, check_finite
from calosim.models.files import load_model
from calosim.models.units import voxels_to_training
from calosim.optim import Adam
from calosim.sampling import generate
from calosim.training import train


@dataclass(frozen=True)
class ToyConfig(ConfigMixin):
    name: str = "toy"
    latent_dim: int = 2
    batch_size: int = 8
    epochs: int = 2
    lr: float = 1e-2
    transform: str = "fraction"
    voxel_scale: float = 20.0
    energy_range: tuple[float, float] | None = None


class ToyTrainer(Trainer):
    """Regresses the generator's mean output on the real batch's mean (a model, not a good one)."""

    loss_names = ("mse",)

    def __init__(self, model, rng):
        super().__init__(model, rng)
        self.optimizers = {"generator": Adam(model.generator.parameters(), model.config.lr, backend=self.backend)}

    def train_step(self, layers_mev, energy_gev, labels=None):
        model, be = self.model, self.backend
        flat = model.geometry.flatten([np.asarray(x, np.float64) for x in layers_mev])
        target = be.asarray(voxels_to_training(flat, energy_gev, model.config))
        e = be.asarray(np.asarray(energy_gev, np.float64))
        z = be.asarray(model.sample_latent(self.rng, len(e)))
        out = model.generator.forward(be.xp.concatenate([z, model.condition(e)], axis=1), True)
        diff = out - target
        loss = float((diff ** 2).mean())
        check_finite(loss, "toy")
        model.generator.backward(2.0 * diff / diff.size)
        self.optimizers["generator"].step()
        return {"mse": loss}


class Toy(ShowerModel):
    model_type = "toy"
    config_class = ToyConfig
    configs = {"toy": ToyConfig()}
    default_config = reference_config = "toy"
    trainer_class = ToyTrainer

    def __init__(self, config, geometry, generator, backend, particle="unknown", energy_range=(1.0, 100.0)):
        super().__init__(config, geometry, backend, particle, energy_range)
        self.generator = generator

    @classmethod
    def build(cls, config, geometry, backend, rng, particle="unknown", energy_range=(1.0, 100.0), fitted=None):
        generator = Sequential([Dense(geometry.n_cells), ReLU()], name="generator")
        generator.build((config.latent_dim + 1,), backend, rng)
        return cls(config, geometry, generator, backend, particle, energy_range)

    def networks(self):
        return {"generator": self.generator}

    def generate(self, z, energy, labels=None, training=False):
        out = self.generator.forward(self.backend.xp.concatenate([z, self.condition(energy)], axis=1), training)
        cells = out * (1000.0 * energy / self.config.voxel_scale).reshape(-1, 1)
        return self.geometry.unflatten(cells)


@pytest.fixture
def toy_type(monkeypatch):
    monkeypatch.setitem(registry.MODEL_TYPES, "toy", Toy)
    return Toy


def test_a_new_model_type_trains_resumes_loads_and_generates_through_the_contract(toy_type, tmp_path):
    data = write_showers(tmp_path / "tiny.h5", tiny_showers(60))
    kw = dict(data=data, backend="numpy", model_type="toy", seed=3)
    whole = train(tmp_path / "whole", epochs=2, **kw)
    train(tmp_path / "split", epochs=1, **kw)
    resumed = train(tmp_path / "split", epochs=2, resume=True, **kw)
    assert whole.epochs_done == resumed.epochs_done == 2
    assert [r["mse"] for r in whole.history] == [r["mse"] for r in resumed.history]  # resumed bit for bit
    model = load_model(tmp_path / "split" / "last.h5", get_backend("numpy"))
    assert isinstance(model, Toy) and model.geometry == TINY_GEOMETRY
    result = generate(tmp_path / "split", tmp_path / "g.h5", num_showers=25, backend="numpy", batch_size=10)
    showers = read_showers(result.path)
    assert len(showers) == 25 and "toy" in showers.attrs["producer"] and showers.geometry == TINY_GEOMETRY


def test_energy_factorisation_works_for_a_new_type_too(toy_type, tmp_path):
    """The layer-energy model attaches to any type: it trains beside it (e_nll), resumes bit for bit, is stored
    in the model file, and every generated layer is rescaled to its energies."""
    data = write_showers(tmp_path / "tiny.h5", tiny_showers(60))
    kw = dict(data=data, backend="numpy", model_type="toy", seed=3, energy_model=True)
    whole = train(tmp_path / "whole", epochs=2, **kw)
    train(tmp_path / "split", epochs=1, **kw)
    resumed = train(tmp_path / "split", epochs=2, resume=True, **kw)
    assert [r["e_nll"] for r in whole.history] == [r["e_nll"] for r in resumed.history]
    model = load_model(tmp_path / "split" / "last.h5", get_backend("numpy"))
    assert model.energy_model is not None and "energy0" in model.all_networks()
    rng = np.random.default_rng(1)
    energy = np.full(200, 50.0)
    layers = model.sample(energy, rng)
    expected = model.energy_model.sample(energy, _after_latent_draws(model, 200, 1))
    sums = np.stack([x.reshape(200, -1).sum(1) for x in layers], 1)
    whole = (sums > 0).all(axis=1)  # showers whose layers the toy generator all filled: exactly the draws
    assert whole.sum() > 20
    np.testing.assert_allclose(sums[whole], expected[whole], rtol=1e-5)
    some = (sums > 0).any(axis=1)  # any shower with a layer: the drawn response
    np.testing.assert_allclose(sums[some].sum(1), expected[some].sum(1), rtol=1e-5)
    with pytest.raises(Exception, match="energy-model"):  # a resume must keep the factorisation
        train(tmp_path / "split", epochs=3, resume=True, **{**kw, "energy_model": False})


def _after_latent_draws(model, n, seed):
    rng = np.random.default_rng(seed)
    model.sample_latent(rng, n)
    return rng


def test_mirror_augmentation_resumes_bit_for_bit(toy_type, tmp_path):
    """--mirror reflects the training showers from a stream of its own, which the checkpoint keeps."""
    import json

    data = write_showers(tmp_path / "tiny.h5", tiny_showers(60))
    kw = dict(data=data, backend="numpy", model_type="toy", seed=3, mirror=True)
    whole = train(tmp_path / "whole", epochs=2, **kw)
    train(tmp_path / "split", epochs=1, **kw)
    resumed = train(tmp_path / "split", epochs=2, resume=True, **kw)
    assert [r["mse"] for r in whole.history] == [r["mse"] for r in resumed.history]
    assert json.loads((tmp_path / "whole" / "run.json").read_text())["mirror_axes"] == [0, 1]
    plain = train(tmp_path / "plain", epochs=2, **{**kw, "mirror": False})
    assert [r["mse"] for r in plain.history] != [r["mse"] for r in whole.history]  # it does change the data


def test_undeclared_losses_stop_the_run(toy_type, tmp_path, monkeypatch):
    from calosim.errors import TrainingError

    data = write_showers(tmp_path / "tiny.h5", tiny_showers(40))
    monkeypatch.setattr(ToyTrainer, "loss_names", ())
    with pytest.raises(TrainingError, match="undeclared losses"):
        train(tmp_path / "run", data=data, backend="numpy", model_type="toy", epochs=1)
