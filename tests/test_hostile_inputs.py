"""Hostile inputs, tried as a careless user would: every bad file, model and option gives one line naming the
cause, exit code 1 (bad input) or 2 (bad usage), no traceback, and nothing written (issue 17)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from hostile_helpers import assert_one_line, edit_config, edit_model, leftovers, run_cli, showers_file, small_model

from calosim.models.file_checks import MAX_PARAMETERS
from calosim.training.energies import robust_band, training_energies


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return small_model(tmp_path_factory.mktemp("model") / "model.h5")


def _nan_weight(f):
    first = _datasets(f["generator"])[0]
    arr = f["generator"][first][()]
    arr.flat[0] = np.nan
    f["generator"][first][...] = arr


def _datasets(group):
    names = []
    group.visititems(lambda name, obj: names.append(name) if hasattr(obj, "shape") else None)
    return names


def _generate(model, out, *args):
    return run_cli("generate", "--model", model, "-n", "30", "--batch-size", "16", "--backend", "numpy", "-o", out,
                   *args)


# ---------------------------------------------------------------- models
def test_nan_weight_is_named_and_nothing_written(model, tmp_path):
    bad = edit_model(model, tmp_path / "nan.h5", _nan_weight)
    code, out = _generate(bad, tmp_path / "g.h5")
    assert_one_line(code, out, 1, "nan.h5", "weight array /generator/", "NaN")
    assert not (tmp_path / "g.h5").exists() and not leftovers(tmp_path)


@pytest.mark.parametrize("group,key,value,fragment", [
    ("architecture", "g_dense_channels", 10 ** 6, "refusing to allocate"),
    ("architecture", "latent_dim", 2 ** 40, "refusing to allocate"),
    ("architecture", "g_conv_filters", -4, "cannot be built"),
    ("architecture", "g_conv_filters", 17, "the stored config implies"),
])
def test_model_config_checked_before_allocation(model, tmp_path, group, key, value, fragment):
    bad = edit_config(model, tmp_path / "bad.h5", group, key, value)
    code, out = _generate(bad, tmp_path / "g.h5")
    assert_one_line(code, out, 1, "bad.h5", fragment)
    assert not (tmp_path / "g.h5").exists()


def test_size_bound_is_above_the_papers_model():
    assert MAX_PARAMETERS > 10 * 32_469_912


@pytest.mark.parametrize("offset", [512, 4096, 8192])
def test_damaged_model_file_is_one_line(model, tmp_path, offset):
    bad = tmp_path / "damaged.h5"
    data = bytearray(model.read_bytes())
    data[offset:offset + 4096] = bytes(4096)
    bad.write_bytes(bytes(data))
    code, out = _generate(bad, tmp_path / "g.h5")
    assert_one_line(code, out, 1, "damaged.h5")


def test_malformed_config_json(model, tmp_path):
    bad = edit_model(model, tmp_path / "json.h5", lambda f: f.attrs.__setitem__("config", '{"name": "calogan", '))
    code, out = _generate(bad, tmp_path / "g.h5")
    assert_one_line(code, out, 1, "json.h5", "malformed model attributes")


# ---------------------------------------------------------------- generate energies
@pytest.mark.parametrize("args,fragment", [
    (["--energy", "inf"], "finite"),
    (["--energy-range", "1", "inf"], "finite"),
    (["--energy", "500"], "--allow-extrapolation"),
    (["--energy-range", "0.1", "50"], "outside the model's training range"),
])
def test_generate_energy_options(model, tmp_path, args, fragment):
    code, out = _generate(model, tmp_path / "g.h5", *args)
    assert_one_line(code, out, 1, fragment)
    assert not (tmp_path / "g.h5").exists()


def test_extrapolation_needs_the_flag_and_says_so(model, tmp_path):
    code, out = _generate(model, tmp_path / "g.h5", "--energy", "150", "--allow-extrapolation")
    assert code == 0, out
    assert "outside the model's training range" in out


@pytest.mark.parametrize("value", [0.0, -5.0, np.nan, np.inf])
def test_energies_from_bad_rows(model, tmp_path, value):
    source = showers_file(tmp_path / "e.h5", 40, {7: value})
    code, out = run_cli("generate", "--model", model, "--energies-from", source, "--backend", "numpy",
                        "-o", tmp_path / "g.h5")
    assert_one_line(code, out, 1, "e.h5", "row 7")
    assert not (tmp_path / "g.h5").exists()


@pytest.mark.parametrize("content", [b"", b"not hdf5 at all\n"])
def test_energies_from_not_a_shower_file(model, tmp_path, content):
    (tmp_path / "bad.h5").write_bytes(content)
    code, out = run_cli("generate", "--model", model, "--energies-from", tmp_path / "bad.h5", "-o", tmp_path / "g.h5")
    assert_one_line(code, out, 1, "bad.h5")


# ---------------------------------------------------------------- existing outputs
def test_existing_output_needs_force(model, tmp_path):
    out_file = tmp_path / "g.h5"
    out_file.write_bytes(b"precious")
    code, out = _generate(model, out_file)
    assert_one_line(code, out, 1, "exists", "--force")
    assert out_file.read_bytes() == b"precious"
    code, out = _generate(model, out_file, "--force")
    assert code == 0, out and out_file.read_bytes() != b"precious"


# ---------------------------------------------------------------- shower files
@pytest.mark.parametrize("with_geometry", [True, False])
def test_missing_layer_is_named(tmp_path, with_geometry):
    path = showers_file(tmp_path / "gap.h5", 40)
    with h5py.File(path, "a") as f:
        del f["layer_1"]
        assert "overflow" in f  # the overflow's shape once hid the missing layer
        if not with_geometry:
            del f.attrs["geometry"]
    code, out = run_cli("data", "show", path)
    assert_one_line(code, out, 1, "missing dataset 'layer_1'")
    code, out = run_cli("train", "--data", path, "--out", tmp_path / "run", "--epochs", "1")
    assert_one_line(code, out, 1, "missing dataset 'layer_1'")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("value", [np.nan, 0.0, -1.0, np.inf])
def test_train_refuses_bad_energies_with_row(tmp_path, value):
    path = showers_file(tmp_path / "d.h5", 320, {11: value})
    code, out = run_cli("train", "--data", path, "--out", tmp_path / "run", "--epochs", "1", "--backend", "numpy")
    assert_one_line(code, out, 1, "d.h5", "row 11")
    assert not (tmp_path / "run").exists()


def test_train_refuses_an_energy_outlier_with_count_and_row(tmp_path):
    path = showers_file(tmp_path / "d.h5", 320, {42: 1e9})
    code, out = run_cli("train", "--data", path, "--out", tmp_path / "run", "--epochs", "1", "--backend", "numpy")
    assert_one_line(code, out, 1, "1 shower(s)", "row 42", "--drop-energy-outliers")
    assert not (tmp_path / "run").exists()


def test_dropping_outliers_keeps_the_data_range(tmp_path):
    path = showers_file(tmp_path / "d.h5", 320, {42: 1e9, 300: 1e-4})
    energies = training_energies(path, range(0, 256), 320, drop_outliers=True)
    assert energies.dropped == 2
    assert not energies.keep[42] and not energies.keep[300] and energies.keep.sum() == 318
    assert 1.0 <= energies.energy_range[0] and energies.energy_range[1] <= 100.0


def test_robust_band_keeps_a_whole_spectrum():
    e = np.random.default_rng(0).uniform(1.0, 100.0, 4000)
    lo, hi = robust_band(e)
    assert lo < e.min() and hi > e.max()
    assert robust_band(np.full(10, 50.0)) == (25.0, 100.0)


def test_evaluate_empty_file(tmp_path):
    (tmp_path / "empty.h5").write_bytes(b"")
    ref = showers_file(tmp_path / "ref.h5", 40)
    code, out = run_cli("evaluate", "--reference", ref, "--generated", tmp_path / "empty.h5", "--out",
                        tmp_path / "report", "--no-classifier", "--no-plots")
    assert_one_line(code, out, 1, "empty.h5")


def test_bad_usage_exits_2(tmp_path):
    code, out = run_cli("data", "slice", "x.h5", "--rows", "5", "2", "-o", tmp_path / "s.h5")
    assert code == 2 and "Traceback" not in out


def test_slice_into_missing_directory(tmp_path):
    src = showers_file(tmp_path / "s.h5", 40)
    code, out = run_cli("data", "slice", src, "--rows", "0", "10", "-o", tmp_path / "nowhere" / "x.h5")
    assert_one_line(code, out, 1, "nowhere")
