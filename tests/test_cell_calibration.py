"""The cell calibration (calosim.models.calibration): per-cell factors that bring a model's mean shape onto the
data's at every energy, fitted after training, kept in model files, applied by sample and by the ONNX graph."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from family_helpers import TINY_GEOMETRY, tiny_showers

from calosim.backends import get_backend
from calosim.cli.main import main
from calosim.data import write_showers
from calosim.models import spread
from calosim.models.calibration import (
    FITTED_KEY,
    apply_factors,
    fit_factors,
    fit_model,
    hat_weights,
    normalised_shapes,
    weighted_means,
)
from calosim.models.files import FITTED, load_model, save_model
from calosim.models.units import energy_condition
from calosim.training import train


def test_hat_weights_sum_to_one_and_interpolate():
    c = np.linspace(-0.2, 1.2, 29).reshape(-1, 1)
    w = hat_weights(c, 5, np)
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    assert (w >= 0).all()
    on_centre = w[np.isclose(c[:, 0], 0.25)][0]  # that centre alone
    np.testing.assert_allclose(on_centre, [0, 1, 0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(w[np.isclose(c[:, 0], 0.35)][0], [0, 0.6, 0.4, 0, 0], atol=1e-12)
    np.testing.assert_allclose(w[0], [1, 0, 0, 0, 0])  # below the range: the first centre


def test_factors_undo_a_known_per_cell_distortion():
    """Model samples that are the data with a known per-cell distortion (energy independent): the factors are its
    inverse (up to the layer's normalisation), and applying them gives back the data's mean shape."""
    data = tiny_showers(3000, seed=1)
    rng = np.random.default_rng(2)
    distortion = [rng.uniform(0.5, 2.0, layer.shape) for layer in TINY_GEOMETRY.layers]
    distorted = [x * d for x, d in zip(data.layers, distortion)]
    c = energy_condition(np.asarray(data.energy, np.float64), (1.0, 100.0), np)
    factors = fit_factors(normalised_shapes(data.layers), c,
                          normalised_shapes(distorted), c, TINY_GEOMETRY)
    corrected = apply_factors([x.astype(np.float64) for x in distorted], factors, c, TINY_GEOMETRY, np)
    for x, y in zip(corrected, distorted):  # the layer sums are kept
        np.testing.assert_allclose(x.reshape(len(x), -1).sum(1), y.reshape(len(y), -1).sum(1), rtol=1e-9)
    w = hat_weights(c, factors.shape[0], np)
    want = weighted_means(normalised_shapes(data.layers), w)
    before = np.abs(weighted_means(normalised_shapes(distorted), w) - want).max()
    after = np.abs(weighted_means(normalised_shapes(corrected), w) - want).max()
    assert after < 0.1 * before, (before, after)


def _tiny(case="vae-small", factorised=True):
    from test_export_onnx import factorised_model, tiny_model

    return factorised_model(case) if factorised else tiny_model(case)


@pytest.mark.parametrize("case,factorised", [("vae-small", True), ("calogan-small", False)])
def test_onnx_runtime_agrees_with_calibrated_sampling(case, factorised):
    pytest.importorskip("onnxruntime")
    from calosim.export.check import check_agreement
    from calosim.export.onnx_model import onnx_graph

    model = _tiny(case, factorised)
    showers = tiny_showers(500, seed=6) if model.geometry == TINY_GEOMETRY else None
    if showers is None:  # the CaloGAN geometry: factors of any pattern
        model.fitted[FITTED_KEY] = np.random.default_rng(7).uniform(0.3, 3.0, (5, model.geometry.n_cells))
    else:
        fit_model(model, showers)
    model.set_sampling_mirror_axes(model.geometry.mirror_axes())
    model.freeze()
    rows = check_agreement(model, onnx_graph(model).SerializeToString(), batch_sizes=(1, 500), seed=1)
    for r in rows:
        assert r.passed, r


def test_model_files_keep_the_factors_and_the_command_refits_them(tmp_path):
    model = _tiny()
    data = write_showers(tmp_path / "tiny.h5", tiny_showers(400, seed=8))
    path = save_model(tmp_path / "m.h5", model)
    result = CliRunner().invoke(main, ["calibrate", "--model", str(path), "--data", str(data), "--backend", "numpy"])
    assert result.exit_code == 0, result.output
    assert "calibration fitted" in result.output and "profile spread" in result.output
    loaded = load_model(path, get_backend("numpy"))
    assert loaded.fitted[FITTED_KEY].shape == (5, TINY_GEOMETRY.n_cells)
    assert loaded.energy_model is not None  # the rest of the file is as it was
    result = CliRunner().invoke(main, ["calibrate", "--model", str(path)])
    assert result.exit_code != 0 and "--data is needed" in result.output


def test_training_fits_it_when_the_run_ends_and_the_mean_shape_comes_nearer_the_datas(tmp_path):
    data = write_showers(tmp_path / "tiny.h5", tiny_showers(600))
    kw = dict(data=data, backend="numpy", model_type="vae", config="small", seed=1, batch_size=16, epochs=3)
    train(tmp_path / "on", **kw)
    train(tmp_path / "off", calibrate_cells=False, **{**kw, "epochs": 1})
    for name in ("best.h5", "last.h5"):
        with h5py.File(tmp_path / "on" / name, "r") as f:
            assert FITTED_KEY in f[FITTED]
        with h5py.File(tmp_path / "off" / name, "r") as f:
            assert FITTED not in f or FITTED_KEY not in f[FITTED]
    with h5py.File(tmp_path / "on" / "checkpoint.h5", "r") as f:  # training state: as without it
        assert FITTED not in f or FITTED_KEY not in f[FITTED]

    model = load_model(tmp_path / "on" / "last.h5", get_backend("numpy"))
    held_out = tiny_showers(2000, seed=3)  # other showers of the same kind
    energy = np.asarray(held_out.energy, np.float64)
    w = hat_weights(energy_condition(energy, model.energy_range, np), 5, np)
    want = weighted_means(normalised_shapes(held_out.layers), w)

    def mean_shape_error():
        layers = model.sample(energy, np.random.default_rng(4))
        return np.abs(weighted_means(normalised_shapes(layers), w) - want).mean()

    calibrated = mean_shape_error()
    for key in (FITTED_KEY, *spread.KEYS):
        model.fitted.pop(key)
    assert calibrated < 0.7 * mean_shape_error()


def test_the_response_factors_of_older_files_scale_the_energy_models_draws():
    """A file fitted before the energy map, with response factors: every layer energy the energy model draws is
    multiplied by G(c), so the same draws give layer sums G(c) times those without them."""
    from calosim.models.calibration import RESPONSE_KEY, response_factors

    model = _tiny("vae-small")
    assert model.draws_layer_energies
    model.fitted[RESPONSE_KEY] = np.array([0.8, 0.9, 1.0, 1.1, 1.2])
    energy = np.geomspace(1.0, 100.0, 300)
    layers = model.generate(np.random.default_rng(1).standard_normal((300, model.latent_dim)), energy)
    with_factors = model.apply_energy_model(layers, energy, np.random.default_rng(2))
    factors = model.fitted.pop(RESPONSE_KEY)
    without = model.apply_energy_model(layers, energy, np.random.default_rng(2))
    g = response_factors(factors, energy_condition(energy, model.energy_range, np), np)[:, 0]
    total_with = sum(x.reshape(300, -1).sum(1) for x in with_factors)
    total_without = sum(x.reshape(300, -1).sum(1) for x in without)
    filled = total_without > 0
    assert filled.sum() > 100
    np.testing.assert_allclose(total_with[filled], g[filled] * total_without[filled], rtol=1e-5)
    assert g.min() < 0.85 and g.max() > 1.15  # the factors vary with the energy


def test_the_command_says_what_is_wrong_in_one_line(tmp_path):
    model = _tiny()
    data = write_showers(tmp_path / "tiny.h5", tiny_showers(300, seed=8))
    path = save_model(tmp_path / "m.h5", model)
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text('{"data": "tiny.h5", "train_rows": [0, 200]}')
    cases = [(["--model", str(run)], "no best.h5 or last.h5"),
             (["--model", str(path), "--data", str(data), "--rows", "500", "900"], "the file has 300 showers"),
             (["--model", str(path), "--data", str(data), "--rows", "0", "50"], "needs at least 100")]
    for args, message in cases:
        result = CliRunner().invoke(main, ["calibrate", *args])
        assert result.exit_code != 0 and message in result.output, result.output
        assert "Traceback" not in result.output


def test_a_run_directory_with_an_unreadable_run_json_is_one_line(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{not json")
    result = CliRunner().invoke(main, ["calibrate", "--model", str(run)])
    assert result.exit_code != 0 and "cannot read the run's data and training rows" in result.output
    assert "Traceback" not in result.output
