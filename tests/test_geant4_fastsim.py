"""A calosim model as Geant4's fast simulation (calosim.fastsim, calosim/geant4/fastsim.cc): one short Geant4 run
with a tiny untrained CaloGAN whose showers above the threshold and inside the model's range are the model's own,
below the threshold and above the range Geant4's; one-line errors for models it cannot use.

Geant4 runs in calosim's worker processes (never in this one; see test_geant4.py).
"""

import importlib.util

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from test_train import TINY_OVERRIDES, _tiny_model

from calosim.backends import get_backend
from calosim.cli.main import main
from calosim.data import read_showers
from calosim.geometry import calogan_geometry
from calosim.models.calogan import CaloGAN
from calosim.models.files import save_model

HAVE_GEANT4 = importlib.util.find_spec("geant4_pybind") is not None
needs_geant4 = pytest.mark.skipif(not HAVE_GEANT4,
                                  reason="geant4_pybind is not installed (pip install 'calosim[geant4]')")
MODEL_RANGE = (1.0, 30.0)  # GeV: showers above 30 GeV fall back to Geant4
THRESHOLD = 12.0  # GeV
SEED, N, RANGE = 4, 10, (2.0, 40.0)  # a seed whose energies fall below, inside and above the two limits


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private calosim cache (stand-in tables, compiled scorer and model) for this module."""
    mp = pytest.MonkeyPatch()
    mp.setenv("CALOSIM_CACHE_DIR", str(tmp_path_factory.mktemp("calosim-cache")))
    yield
    mp.undo()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A tiny untrained CaloGAN in the CaloGAN geometry (energy-scaled output: its showers grow with E)."""
    cfg = CaloGAN.get_config("small").replace(**TINY_OVERRIDES)
    model = CaloGAN.build(cfg, calogan_geometry(), get_backend("numpy"), np.random.default_rng(0), "e+",
                          MODEL_RANGE)
    return save_model(tmp_path_factory.mktemp("model") / "tiny-calogan.h5", model)


@pytest.fixture(scope="module")
def fastsim_run(cache, model_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("fastsim") / "fastsim.h5"
    result = CliRunner().invoke(main, ["simulate", "--engine", "geant4", "--approximate-data", "--particle", "eplus",
                                       "-n", str(N), "--energy-range", *map(str, RANGE), "--seed", str(SEED),
                                       "--fastsim", str(model_file), "--fastsim-threshold", str(THRESHOLD),
                                       "-o", str(out)])
    assert result.exit_code == 0, result.output
    with h5py.File(out, "r") as f:
        datasets = {name: f[name][()] for name in ("fastsim", "fastsim_particles", "fastsim_fallbacks",
                                                   "fastsim_entry")}
    showers = read_showers(out)  # validates shapes, finiteness, signs
    groups = {"below": showers.energy < THRESHOLD, "inside": (showers.energy >= THRESHOLD)
              & (showers.energy <= MODEL_RANGE[1]), "above": showers.energy > MODEL_RANGE[1]}
    assert all(mask.any() for mask in groups.values()), showers.energy  # the seed covers every case
    return showers, datasets, groups


@needs_geant4
def test_fastsim_flags_exactly_the_triggered_showers(fastsim_run, model_file):
    showers, data, groups = fastsim_run
    np.testing.assert_array_equal(data["fastsim"], groups["inside"].astype(np.uint8))
    np.testing.assert_array_equal(data["fastsim_particles"], groups["inside"].astype(np.int32))
    np.testing.assert_array_equal(data["fastsim_fallbacks"], groups["above"].astype(np.int32))
    entry = data["fastsim_entry"][groups["inside"]]
    np.testing.assert_allclose(entry[:, 0], showers.energy[groups["inside"]], rtol=1e-6)  # GeV, at the face
    np.testing.assert_array_equal(entry[:, 1:8], np.tile([0.0, 0.0, -240.0, 0.0, 0.0, 1.0, -11], (len(entry), 1)))
    assert np.isnan(data["fastsim_entry"][~groups["inside"]]).all()
    a = showers.attrs
    assert a["fastsim_model"] == str(model_file) and len(a["fastsim_model_sha256"]) == 64
    assert a["fastsim_threshold_gev"] == THRESHOLD and list(a["fastsim_energy_range"]) == list(MODEL_RANGE)
    assert a["fastsim_showers"] == groups["inside"].sum() and "G4VFastSimulationModel" in a["fastsim_trigger"]


@needs_geant4
def test_fastsim_showers_are_the_models_own_and_follow_the_energy(fastsim_run, model_file):
    from calosim.fastsim import ModelShowerSource

    showers, data, groups = fastsim_run
    rng = np.random.default_rng(SEED)  # the engine's draws: energies, then one Geant4 seed per shower
    rng.uniform(*RANGE, size=N)
    geant4_seeds = rng.integers(1, 2**62, size=N)
    sample = ModelShowerSource(str(model_file)).open()
    flat = showers.flat()
    for i in np.flatnonzero(groups["inside"]):
        expected = sample(data["fastsim_entry"][i, 0], np.random.default_rng([int(geant4_seeds[i]), 0]))
        # atol: the primary's ~1e-24 MeV of ionisation in the vacuum before the face is scored as always
        np.testing.assert_allclose(flat[i], expected, rtol=1e-6, atol=1e-12)
    inside = groups["inside"]
    response = showers.total_energy()[inside] / (1e3 * showers.energy[inside])
    assert np.corrcoef(showers.energy[inside], showers.total_energy()[inside])[0, 1] > 0.9
    assert response.max() < 0.9  # the untrained model's response, far from Geant4's ~0.99


@needs_geant4
def test_particles_below_threshold_or_outside_the_range_are_geant4s(fastsim_run):
    showers, _, groups = fastsim_run
    geant4 = ~groups["inside"]
    response = showers.total_energy()[geant4] / (1e3 * showers.energy[geant4])
    assert ((response > 0.95) & (response < 1.0)).all(), response  # Geant4's e+ response in CaloGAN


def test_fastsim_refuses_models_it_cannot_use_in_one_line(tmp_path):
    not_a_model = tmp_path / "notes.h5"
    not_a_model.write_text("not HDF5")
    other_geometry = save_model(tmp_path / "tiny-geometry.h5", _tiny_model("numpy"))
    runner = CliRunner()
    for model, needle in ((not_a_model, "cannot open as HDF5"), (other_geometry, "CaloGAN readout")):
        result = runner.invoke(main, ["simulate", "--engine", "geant4", "--approximate-data", "--particle", "eplus",
                                      "-n", "2", "--fastsim", str(model), "-o", str(tmp_path / "x.h5")])
        assert result.exit_code == 1, result.output
        lines = [line for line in result.output.splitlines() if line.startswith("Error")]
        assert len(lines) == 1 and needle in lines[0] and "Traceback" not in result.output, result.output
    assert not (tmp_path / "x.h5").exists()
    result = runner.invoke(main, ["simulate", "--particle", "eplus", "-n", "2", "--fastsim", str(other_geometry),
                                  "-o", str(tmp_path / "x.h5")])
    assert result.exit_code == 2 and "--engine geant4" in result.output
    result = runner.invoke(main, ["bench", "--fastsim", str(other_geometry)])
    assert result.exit_code == 2 and "--vs-geant4" in result.output


@needs_geant4
def test_bench_times_geant4_with_and_without_the_model(cache, model_file):
    from calosim.benchmark import bench_fastsim_vs_geant4

    rows = bench_fastsim_vs_geant4(model_file, energies=(2.0, 20.0), geant4_showers=1)
    assert [r["energy_gev"] for r in rows] == [2.0, 20.0]
    assert [r["fastsim_fraction"] for r in rows] == [1.0, 1.0]  # threshold: the model's lowest energy
    assert all(r["geant4_ms_per_event"] > 0 and r["fastsim_ms_per_event"] > 0 for r in rows)
