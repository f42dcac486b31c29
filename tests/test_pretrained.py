"""The pretrained models shipped in the package: each catalogue entry's file is there, unchanged, loads as the
particle it claims, generates by name through `calosim generate --model NAME`, and `calosim models list` shows
the measured quality the catalogue holds."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from click.testing import CliRunner

from calosim.backends import get_backend
from calosim.cli.main import main
from calosim.data import read_showers
from calosim.errors import DataError
from calosim.models.files import load_model
from calosim.pretrained import catalogue, pretrained_path
from calosim.training import resolve_model_path

ENTRIES = catalogue()
PARTICLES = {"eplus": "e+", "gamma": "gamma", "piplus": "pi+"}


def test_the_three_particles_are_shipped():
    assert sorted(ENTRIES) == sorted(PARTICLES)


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_shipped_file_is_the_catalogued_one_and_loads(name):
    entry = ENTRIES[name]
    path = pretrained_path(name)
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["size_bytes"]
    assert len(data) < 20e6  # "a few MB each"
    model = load_model(path, get_backend("numpy"))
    assert model.particle == PARTICLES[name] == entry["particle"]
    assert model.model_type == entry["recipe"]["model_type"]
    assert list(model.energy_range) == pytest.approx(entry["energy_range_gev"])
    quality = entry["quality"]
    assert 0.5 <= quality["auc_low"] <= 1.0 and quality["n_reference"] >= 1000
    assert len(quality["seeds"]) >= 3  # the recipe's spread over seeds, not one best run


def test_generate_by_name_follows_the_energy(tmp_path):
    name = "eplus"
    means = {}
    for energy in (10.0, 50.0):
        out = tmp_path / f"{energy:g}.h5"
        result = CliRunner().invoke(main, ["generate", "--model", name, "-n", "200", "--energy", str(energy),
                                           "--seed", "3", "-o", str(out)])
        assert result.exit_code == 0, result.output
        showers = read_showers(out)
        assert showers.particle == "e+" and len(showers) == 200
        means[energy] = float((showers.total_energy() / (1000.0 * showers.energy)).mean())
    expected = ENTRIES[name]["quality"]["response_ref"]  # Geant4's mean response over 1-100 GeV
    for energy, response in means.items():
        assert abs(response - expected) < 0.01, (energy, response, expected)


def test_a_file_of_that_name_comes_before_the_pretrained_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "eplus").mkdir()
    with pytest.raises(DataError, match="run directory without"):
        resolve_model_path("eplus")


def test_unknown_name_is_one_line_listing_the_shipped_ones(tmp_path):
    result = CliRunner().invoke(main, ["generate", "--model", "positron-v9", "-n", "5", "-o", str(tmp_path / "x.h5")])
    assert result.exit_code == 1
    line = result.output.strip()
    assert "\n" not in line and "positron-v9" in line and all(name in line for name in ENTRIES), line
    assert not (tmp_path / "x.h5").exists()


def test_models_list_shows_what_the_catalogue_measured():
    result = CliRunner().invoke(main, ["models", "list"])
    assert result.exit_code == 0, result.output
    for name, entry in ENTRIES.items():
        row = next(line for line in result.output.splitlines() if line.startswith(name + " "))
        assert f"{entry['quality']['auc_low']:.3f}" in row and f"{entry['quality']['fpd']:.3f}" in row
    shown = CliRunner().invoke(main, ["models", "show", "gamma", ])
    assert shown.exit_code == 0 and json.loads(shown.output)["particle"] == "gamma"
    assert np.isfinite(json.loads(shown.output)["quality"]["mean_sep"])


def test_bench_and_export_take_the_name(tmp_path):
    bench = CliRunner().invoke(main, ["bench", "--model", "gamma", "--batch-sizes", "2", "--json"])
    assert bench.exit_code == 0, bench.output
    assert json.loads(bench.output)["model"] == str(pretrained_path("gamma"))
    pytest.importorskip("onnxruntime", reason="the export check needs the onnx extra")
    out = tmp_path / "eplus.onnx"
    export = CliRunner().invoke(main, ["export", "--model", "eplus", "--format", "onnx", "-o", str(out), "--check"])
    assert export.exit_code == 0, export.output
    assert out.stat().st_size > 1e6 and "ok" in export.output


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_the_onnx_graph_of_each_shipped_model_agrees_with_its_sampling_on_other_draws(name):
    """Draw seeds on which the float32 graph once parted from the float64 sampling by up to 4e-4 of a layer's
    largest cell (the energy map's mixture quantiles in the upper tail, and its response near the energy model's
    cap)."""
    pytest.importorskip("onnxruntime", reason="the export check needs the onnx extra")
    from calosim.export.check import check_agreement
    from calosim.export.onnx_model import onnx_graph

    model = load_model(resolve_model_path(name), get_backend("numpy"))
    model.freeze()
    data = onnx_graph(model).SerializeToString()
    for seed in (3, 4, 5):
        for row in check_agreement(model, data, batch_sizes=(1000,), seed=seed):
            assert row.passed, (seed, row)
