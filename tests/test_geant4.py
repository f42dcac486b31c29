"""The Geant4 engine (calosim.geant4): data-set discovery, readout, a small real simulation.

Tests that run Geant4 are skipped where the geant4 extra is not installed. geant4_pybind is never imported in
this process (importing it without GEANT4_DATA_DIR starts a download); Geant4 runs in calosim's workers.
"""

import ctypes
import importlib.util
import os

import numpy as np
import pytest
from click.testing import CliRunner

from calosim.geometry import calogan_geometry

HAVE_GEANT4 = importlib.util.find_spec("geant4_pybind") is not None
needs_geant4 = pytest.mark.skipif(not HAVE_GEANT4,
                                  reason="geant4_pybind is not installed (pip install 'calosim[geant4]')")
DATA_VARS = ["GEANT4_DATA_DIR", "G4NEUTRONHPDATA", "G4LEDATA", "G4LEVELGAMMADATA", "G4RADIOACTIVEDATA",
             "G4PARTICLEXSDATA", "G4PIIDATA", "G4REALSURFACEDATA", "G4SAIDXSDATA", "G4ABLADATA", "G4INCLDATA",
             "G4ENSDFSTATEDATA", "G4CHANNELINGDATA"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private calosim cache (stand-in tables, compiled scorer) for this module."""
    path = tmp_path_factory.mktemp("calosim-cache")
    old = os.environ.get("CALOSIM_CACHE_DIR")
    os.environ["CALOSIM_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        del os.environ["CALOSIM_CACHE_DIR"]
    else:
        os.environ["CALOSIM_CACHE_DIR"] = old


@pytest.fixture
def no_data(monkeypatch, tmp_path):
    """An environment without any Geant4 data sets."""
    for var in DATA_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PATH", "/nonexistent")  # no geant4-config
    return tmp_path


def test_missing_data_is_one_clear_line(no_data):
    from calosim.geant4.datasets import Geant4DataError, setup_data

    with pytest.raises(Geant4DataError) as err:
        setup_data(approximate=False)
    msg = str(err.value)
    assert "\n" not in msg
    for needle in ("G4EMLOW", "GEANT4_DATA_DIR", "--approximate-data", "import geant4_pybind"):
        assert needle in msg, msg


def test_installed_data_found_by_version(no_data, monkeypatch):
    from calosim.geant4.datasets import DATASETS, REQUIRED, setup_data

    base = no_data / "g4data"
    for name in REQUIRED:
        (base / f"{name}{DATASETS[name][1]}").mkdir(parents=True)
    (base / "G4EMLOW7.0").mkdir()  # an older version next to the right one
    monkeypatch.setenv("GEANT4_DATA_DIR", str(base))
    setup = setup_data(approximate=False)
    assert not setup.approximate
    assert setup.env["G4LEDATA"] == str(base / "G4EMLOW8.8")
    assert setup.env["GEANT4_DATA_DIR"] == str(base)


def test_missing_extra_says_how_to_install(monkeypatch):
    from calosim.geant4 import engine

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(engine.Geant4Error, match=r"pip install 'calosim\[geant4\]'"):
        engine.require_geant4()


def test_python_readout_cells():
    from calosim.geant4.scorer import cell_finder

    cell_of = cell_finder(calogan_geometry())
    assert cell_of(0.0, 0.0, -200.0) == 1 * 96 + 48  # layer_0: x in [-80, 80) -> row 1, y in [0, 5) -> col 48
    assert cell_of(-240.0 + 1e-9, -240.0 + 1e-9, -150.0) == 288  # z = -150 is layer_1
    assert cell_of(239.9, 0.0, 0.0) == 288 + 11 * 12 + 6
    assert cell_of(240.0, 0.0, 0.0) == 504 + 1  # outside the window -> overflow of layer_1
    assert cell_of(0.0, -300.0, 197.0) == 504 + 2  # z = 197 is layer_2
    assert cell_of(-1.0, 100.0, 230.0) == 432 + 5 * 6 + 4


@needs_geant4
def test_compiled_readout_matches_python(cache):
    from calosim.geant4.scorer import build_scorer, cell_finder, readout

    library, why = build_scorer()
    if library is None:
        pytest.skip(f"compiled scorer unavailable: {why}")
    lib = ctypes.CDLL(str(library))
    zmax, nx, ny, half = readout(calogan_geometry())
    assert lib.calosim_configure(3, (ctypes.c_double * 3)(*zmax), (ctypes.c_int * 3)(*nx),
                                 (ctypes.c_int * 3)(*ny), ctypes.c_double(half)) == 507
    lib.calosim_cell_of.argtypes = [ctypes.c_double] * 3
    cell_of = cell_finder(calogan_geometry())
    rng = np.random.default_rng(3)
    points = np.concatenate([rng.uniform(-300, 300, (3000, 3)),
                             rng.choice([-240.0, -160.0, 0.0, 200.0, 240.0, -150.0, 197.0], (500, 3))])
    for x, y, z in points:
        assert lib.calosim_cell_of(x, y, z) == cell_of(x, y, z), (x, y, z)


@needs_geant4
def test_cli_without_data_fails_with_one_line(no_data, tmp_path):
    from calosim.cli.main import main

    result = CliRunner().invoke(main, ["simulate", "--engine", "geant4", "--particle", "eplus", "-n", "2",
                                       "-o", str(tmp_path / "x.h5")])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and "--approximate-data" in lines[0], result.output
    assert not (tmp_path / "x.h5").exists()


@needs_geant4
def test_cli_20_eplus_showers_with_approximate_data(cache, tmp_path):
    from calosim.cli.main import main
    from calosim.data.formats import read_showers

    out = tmp_path / "eplus.h5"
    result = CliRunner().invoke(main, ["simulate", "--engine", "geant4", "--approximate-data", "--particle",
                                       "eplus", "-n", "20", "--energy-range", "2", "20", "--seed", "7",
                                       "--workers", "2", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "eplus.h5.parts").exists()
    showers = read_showers(out)  # validates shapes, finiteness, signs
    assert len(showers) == 20 and showers.particle == "e+"
    assert [a.shape[1:] for a in showers.layers] == [(3, 96), (12, 12), (12, 6)]
    assert showers.overflow.shape == (20, 3)
    assert np.all((showers.energy >= 2) & (showers.energy <= 20))
    a = showers.attrs
    assert a["engine"] == "geant4" and a["approximate_data"] is True and a["seed"] == 7
    assert "geant4-11-04" in a["geant4_version"] and "FTFP_BERT" in a["physics_list"]
    ratio = showers.total_energy() / (1e3 * showers.energy)
    assert 0.98 < ratio.mean() < 1.0, ratio  # ~0.99 of the incident energy, as in CaloGAN's e+ files
    assert ratio.min() > 0.95 and ratio.max() < 1.0
    fractions = showers.layer_energies().mean(axis=0) / showers.total_energy().mean()
    assert 0.1 < fractions[0] < 0.4 and 0.6 < fractions[1] < 0.9 and fractions[2] < 0.02, fractions


@needs_geant4
def test_showers_independent_of_workers_chunks_scorer_and_resume(cache, tmp_path, monkeypatch):
    from calosim.errors import ConfigError
    from calosim.geant4 import simulate_geant4

    kw = dict(energy_range=(2.0, 6.0), seed=21, approximate_data=True)
    ref = simulate_geant4("eplus", 4, **kw)
    parts = tmp_path / "parts"
    one = simulate_geant4("eplus", 4, workers=2, chunk_size=1, resume_dir=parts, **kw)
    (parts / "chunk_00002.npz").unlink()
    resumed = simulate_geant4("eplus", 4, chunk_size=1, resume_dir=parts, **kw)
    with pytest.raises(ConfigError, match="different simulation"):
        simulate_geant4("eplus", 4, chunk_size=1, resume_dir=parts, energy_range=(2.0, 7.0), seed=21,
                        approximate_data=True)
    monkeypatch.setenv("CALOSIM_G4_SCORER", "python")
    with pytest.warns(RuntimeWarning, match="Python Geant4 stepping action"):
        python = simulate_geant4("eplus", 4, **kw)
    assert python.attrs["stepping_action"].startswith("Python")
    for other in (one, resumed, python):
        for x, y in zip(ref.layers + [ref.overflow], other.layers + [other.overflow]):
            np.testing.assert_array_equal(x, y)
