"""Generation: a valid CaloGAN file whose cell sums follow the requested energies, written in chunks,
reproducible, with every way of choosing the energies; and the `calosim train` / `generate` commands."""

from __future__ import annotations

import hashlib

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from test_train import TINY_GEOMETRY, _tiny_model, tiny_showers

from calosim.cli.main import main
from calosim.data import read_showers, write_showers
from calosim.errors import DataError
from calosim.models.calogan.training import GANTrainer
from calosim.models.files import save_model
from calosim.sampling import generate


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory):
    """A tiny model trained for a few dozen steps, the energy term weighted up so that its response is learnt."""
    model = _tiny_model("numpy", energy_loss_weight=2.0, lr_g=3e-3)
    be = model.backend
    trainer = GANTrainer(model, np.random.default_rng(0))
    data = tiny_showers(64, seed=5)
    for step in range(30):
        rows = slice(16 * (step % 4), 16 * (step % 4 + 1))
        images = [be.asarray(x[rows, ..., None] / 1000.0) for x in data.layers]
        trainer.train_step(images, be.asarray(data.energy[rows]))
    return save_model(tmp_path_factory.mktemp("model") / "tiny.h5", model)


def _digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_generate_writes_calogan_file_that_follows_the_energy(trained_model, tmp_path, backend_name):
    sums = {}
    for energy in (10.0, 50.0, 90.0):
        out = generate(trained_model, tmp_path / f"e{energy:g}.h5", num_showers=100, backend=backend_name,
                       energy=energy, batch_size=32, seed=1)
        showers = read_showers(out.path)  # validates shapes, finiteness, non-negative cells
        assert len(showers) == 100 and showers.geometry == TINY_GEOMETRY and showers.particle == "e+"
        assert np.all(showers.energy == np.float32(energy))
        sums[energy] = float(showers.total_energy().mean()) / 1000.0  # GeV
    assert sums[10.0] < sums[50.0] < sums[90.0], sums
    assert sums[90.0] > 3 * sums[10.0], sums
    with h5py.File(tmp_path / "e10.h5", "r") as f:
        assert f["layer_0"].shape == (100, 2, 16) and f["energy"].shape == (100, 1)
        assert f["layer_0"].chunks[0] == 32 and "MeV" in f.attrs["units"]


def test_generate_is_reproducible_and_chunked(trained_model, tmp_path):
    a = generate(trained_model, tmp_path / "a.h5", num_showers=70, backend="numpy", batch_size=16, seed=3)
    b = generate(trained_model, tmp_path / "b.h5", num_showers=70, backend="numpy", batch_size=16, seed=3)
    c = generate(trained_model, tmp_path / "c.h5", num_showers=70, backend="numpy", batch_size=70, seed=3)
    d = generate(trained_model, tmp_path / "d.h5", num_showers=70, backend="numpy", batch_size=16, seed=4)
    assert _digest(a.path) == _digest(b.path)  # same seed and backend: the same bytes
    sa, sc, sd = (read_showers(r.path) for r in (a, c, d))
    np.testing.assert_array_equal(sa.energy, sc.energy)  # the batch size does not change the stream
    for x, y in zip(sa.layers, sc.layers):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-3)
    assert not np.array_equal(sa.energy, sd.energy)
    assert 1.0 <= sa.energy.min() and sa.energy.max() <= 100.0  # default: the model's range
    assert a.ms_per_shower > 0 and not list(tmp_path.glob(".*.tmp"))


def test_energy_choices(trained_model, tmp_path):
    r = generate(trained_model, tmp_path / "r.h5", num_showers=50, backend="numpy", energy_range=(20.0, 30.0))
    e = read_showers(r.path).energy
    assert 20.0 <= e.min() and e.max() <= 30.0
    src = write_showers(tmp_path / "src.h5", tiny_showers(40, seed=8))
    f = generate(trained_model, tmp_path / "f.h5", backend="numpy", energies_from=src, batch_size=15)
    np.testing.assert_array_equal(read_showers(f.path).energy, read_showers(src).energy)
    with pytest.raises(DataError, match="at most one"):
        generate(trained_model, tmp_path / "x.h5", num_showers=5, energy=3.0, energy_range=(1, 2))
    with pytest.raises(DataError, match="fewer than"):
        generate(trained_model, tmp_path / "x.h5", num_showers=41, energies_from=src)


def test_train_and_generate_commands(tmp_path):
    data = write_showers(tmp_path / "d.h5", tiny_showers(60))
    cfg = tmp_path / "tiny.toml"
    cfg.write_text('latent_dim = 8\ng_dense_channels = 2\ng_conv_filters = 2\ng_lc_filters = 2\n'
                   'd_conv_filters = 2\nd_lc_filters = [2, 2, 2]\nmbd_kernels = 2\nmbd_dim = 2\n')
    runner = CliRunner()
    args = ["train", "--data", str(data), "--backend", "numpy", "--config-file", str(cfg), "--epochs", "1",
            "--batch-size", "16", "--out", str(tmp_path / "run")]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "epoch 1:" in result.output and (tmp_path / "run" / "log.jsonl").is_file()
    again = runner.invoke(main, args)
    assert again.exit_code != 0 and "--resume" in again.output and "Traceback" not in again.output
    out = tmp_path / "g.h5"
    result = runner.invoke(main, ["generate", "--model", str(tmp_path / "run"), "--backend", "numpy",
                                  "--num-showers", "30", "--energy-range", "5", "50", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "ms/shower" in result.output and len(read_showers(out)) == 30
    result = runner.invoke(main, ["info", "--model-type", "calogan"])
    assert result.exit_code == 0 and "29,726,280" in result.output and "2,743,632" in result.output
    result = runner.invoke(main, ["info", "--model-type", "vae", "--config", "small"])
    assert result.exit_code == 0 and "encoder" in result.output and "decoder" in result.output


def test_generate_initial_weights_of_a_run(tmp_path):
    """`calosim generate --initial-weights` samples the run's untrained starting point: not the trained
    weights' showers, marked as such in the file, and only for a run directory."""
    import json

    from test_train import TINY_OVERRIDES

    data = write_showers(tmp_path / "tiny.h5", tiny_showers(64, seed=2))
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_OVERRIDES))
    runner = CliRunner()
    run = tmp_path / "run"
    result = runner.invoke(main, ["train", "--data", str(data), "--backend", "numpy", "--config-file", str(config),
                                  "--epochs", "2", "--out", str(run)])
    assert result.exit_code == 0, result.output
    outs = {}
    for flag in ([], ["--initial-weights"]):
        out = tmp_path / f"gen{len(flag)}.h5"
        result = runner.invoke(main, ["generate", "--model", str(run), "--backend", "numpy", "-n", "50",
                                      "--energy", "50", "--seed", "1", "-o", str(out), *flag])
        assert result.exit_code == 0, result.output
        outs[bool(flag)] = read_showers(out)
        with h5py.File(out, "r") as f:
            assert f.attrs["weights"] == ("initial" if flag else "trained")
    assert not np.array_equal(outs[True].layers[1], outs[False].layers[1])
    result = runner.invoke(main, ["generate", "--model", str(run / "best.h5"), "--initial-weights", "-n", "5",
                                  "-o", str(tmp_path / "x.h5")])
    assert result.exit_code != 0 and "run.json" in result.output
