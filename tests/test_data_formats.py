import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from calosim.data import Showers, detect_format, read_showers, write_showers
from calosim.data.formats import convert, open_showers
from calosim.errors import DataError
from calosim.geometry import calochallenge_geometry, calogan_geometry

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.exists(), reason="shared data not present")


def make_showers(n=20, seed=0, overflow=True):
    g = calogan_geometry()
    rng = np.random.default_rng(seed)
    layers = [(rng.random((n,) + s) * (rng.random((n,) + s) < 0.3) * 100).astype(np.float32) for s in g.shapes]
    energy = rng.uniform(1, 100, n).astype(np.float32)
    ovf = rng.random((n, 3)).astype(np.float32) if overflow else None
    return Showers(layers, energy, g, ovf, "e+", {"note": "test", "nested": {"a": [1, "b"]}})


def assert_same(a: Showers, b: Showers):
    assert len(a) == len(b)
    for x, y in zip(a.layers, b.layers):
        assert x.dtype == np.float32
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a.energy, b.energy)
    assert a.energy.dtype == np.float32
    if a.overflow is None:
        assert b.overflow is None
    else:
        np.testing.assert_array_equal(a.overflow, b.overflow)
    assert a.geometry == b.geometry and a.particle == b.particle


@pytest.mark.parametrize("fmt", ["calogan", "calochallenge"])
def test_round_trip(tmp_path, fmt):
    s = make_showers()
    path = write_showers(tmp_path / "s.h5", s, format=fmt, seed=7, producer="test")
    assert detect_format(path) == fmt
    t = read_showers(path)
    assert_same(s, t)
    assert t.attrs["seed"] == 7 and t.attrs["producer"] == "test"
    assert t.attrs["note"] == "test" and t.attrs["nested"] == {"a": [1, "b"]}
    with h5py.File(path) as f:
        for key in ("units", "geometry", "particle", "seed", "calosim_version", "producer", "format"):
            assert key in f.attrs
        assert json.loads(f.attrs["geometry"])["name"] == "calogan"
        if fmt == "calochallenge":
            # incident energies are stored in MeV, like the challenge files
            np.testing.assert_allclose(f["incident_energies"][:, 0], s.energy.astype(np.float64) * 1000)
    assert [p.name for p in tmp_path.iterdir()] == ["s.h5"]  # no temporary left behind


def test_slices_and_subset(tmp_path):
    s = make_showers(30)
    path = write_showers(tmp_path / "s.h5", s)
    assert_same(read_showers(path, 5, 12), s.subset(slice(5, 12)))
    assert len(read_showers(path, 28, 100)) == 2
    assert len(s.subset(3)) == 1
    np.testing.assert_allclose(s.total_energy(), sum(x.reshape(30, -1).sum(1) for x in s.layers), rtol=1e-6)


def test_calogan_to_calochallenge_and_back_is_lossless(tmp_path):
    s = make_showers(25, seed=3)
    a = write_showers(tmp_path / "a.h5", s, format="calogan")
    b = convert(a, tmp_path / "b.h5", "calochallenge")
    c = convert(b, tmp_path / "c.h5", "calogan")
    with h5py.File(b) as f:
        assert f["showers"].shape == (25, 504)
    assert_same(s, read_showers(c))


@needs_shared
def test_calochallenge_with_binning_xml(tmp_path):
    g = calochallenge_geometry(SHARED / "calochallenge_binning" / "binning_dataset_1_photons.xml")
    rng = np.random.default_rng(1)
    flat = rng.random((6, g.n_cells)).astype(np.float32)
    inc = np.array([[256.0], [512.0], [1024.0], [2048.0], [4096.0], [8192.0]], np.float32)  # MeV
    path = tmp_path / "challenge.h5"
    with h5py.File(path, "w") as f:  # a bare challenge file: no attributes
        f["showers"] = flat
        f["incident_energies"] = inc
    with pytest.raises(DataError, match="binning"):
        read_showers(path)
    s = read_showers(path, binning=SHARED / "calochallenge_binning" / "binning_dataset_1_photons.xml")
    np.testing.assert_allclose(s.energy, inc[:, 0] / 1000)  # GeV
    np.testing.assert_array_equal(g.flatten(s.layers), flat)
    assert [x.shape[1:] for x in s.layers] == list(g.shapes)


@needs_shared
def test_reads_hepcat_float64_fixture():
    s = read_showers(SHARED / "calogan_format" / "HEPCAT_CaloGAN_test_eplus51.h5")
    assert len(s) == 51 and s.geometry == calogan_geometry()
    assert all(x.dtype == np.float32 for x in s.layers) and s.energy.dtype == np.float32
    assert s.overflow.shape == (51, 3)
    np.testing.assert_allclose(s.total_energy() / (1000 * s.energy), 0.99, atol=0.03)


@needs_shared
@pytest.mark.parametrize("particle", ["eplus", "gamma", "piplus"])
def test_reads_geant4_slices(particle):
    with open_showers(SHARED / "geant4" / f"{particle}_train.h5") as f:
        assert len(f) >= 4000
        s = f.read(1000, 1100)
    assert len(s) == 100 and s.particle in ("e+", "gamma", "pi+")
    assert "geometry_description" in s.attrs


# --- bad input: one DataError naming the file --------------------------------------------------------------

def _write_raw(path, **datasets):
    with h5py.File(path, "w") as f:
        for k, v in datasets.items():
            f[k] = v
    return path


def _good(n=4):
    s = make_showers(n)
    return dict(layer_0=s.layers[0], layer_1=s.layers[1], layer_2=s.layers[2], overflow=s.overflow,
                energy=s.energy.reshape(n, 1))


def test_not_hdf5(tmp_path):
    p = tmp_path / "text.h5"
    p.write_text("hello")
    with pytest.raises(DataError, match="text.h5.*not an HDF5"):
        read_showers(p)


def test_truncated(tmp_path):
    good = write_showers(tmp_path / "good.h5", make_showers(200))
    data = good.read_bytes()
    p = tmp_path / "trunc.h5"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="trunc.h5"):
        read_showers(p)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_showers(tmp_path / "none.h5")
    with pytest.raises(DataError, match="directory"):
        read_showers(tmp_path)


def test_missing_dataset(tmp_path):
    d = _good()
    del d["energy"]
    with pytest.raises(DataError, match="miss.h5.*missing dataset 'energy'"):
        read_showers(_write_raw(tmp_path / "miss.h5", **d))
    with pytest.raises(DataError, match="neither a CaloGAN"):
        read_showers(_write_raw(tmp_path / "empty.h5", foo=np.zeros(3)))


def test_wrong_shape(tmp_path):
    d = _good()
    d["layer_1"] = np.zeros((4, 12, 11), np.float32)
    with pytest.raises(DataError, match="shape.h5.*layer_1.*shape"):
        read_showers(_write_raw(tmp_path / "shape.h5", **d))


def test_wrong_shape_with_geometry_attr(tmp_path):
    path = write_showers(tmp_path / "g.h5", make_showers(4))
    with h5py.File(path, "a") as f:
        del f["layer_2"]
        f["layer_2"] = np.zeros((4, 6, 12), np.float32)
    with pytest.raises(DataError, match="layer_2.*shape"):
        read_showers(path)


def test_mismatched_lengths(tmp_path):
    d = _good()
    d["energy"] = np.ones((3, 1), np.float32)
    with pytest.raises(DataError, match="len.h5.*mismatched lengths"):
        read_showers(_write_raw(tmp_path / "len.h5", **d))


@pytest.mark.parametrize("value,match", [(np.nan, "NaN"), (np.inf, "NaN or infinite"), (-1.0, "negative")])
def test_bad_cells(tmp_path, value, match):
    d = _good()
    d["layer_1"] = d["layer_1"].copy()
    d["layer_1"][2, 3, 4] = value
    with pytest.raises(DataError, match=f"cells.h5.*layer_1.*{match}.*shower 2"):
        read_showers(_write_raw(tmp_path / "cells.h5", **d))


def test_bad_overflow(tmp_path):
    d = _good()
    d["overflow"] = d["overflow"].copy()
    d["overflow"][1, 0] = np.nan
    with pytest.raises(DataError, match="overflow"):
        read_showers(_write_raw(tmp_path / "ovf.h5", **d))


@pytest.mark.parametrize("value", [0.0, -5.0, np.nan, np.inf])
def test_bad_energy(tmp_path, value):
    d = _good()
    d["energy"] = d["energy"].copy()
    d["energy"][1, 0] = value
    with pytest.raises(DataError, match="energy.h5.*incident energy out of range"):
        read_showers(_write_raw(tmp_path / "energy.h5", **d))


def test_write_refuses_bad_data_and_leaves_nothing(tmp_path):
    s = make_showers(5)
    s.layers[0][0, 0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        write_showers(tmp_path / "out.h5", s)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DataError, match="does not exist"):
        write_showers(tmp_path / "nodir" / "out.h5", make_showers(2))


def test_interrupted_write_keeps_old_file(tmp_path, monkeypatch):
    path = write_showers(tmp_path / "s.h5", make_showers(5))
    before = path.read_bytes()

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("calosim.data.writer._write_attr", boom)
    with pytest.raises(KeyboardInterrupt):
        write_showers(path, make_showers(7))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["s.h5"]


def test_data_slice_command(tmp_path):
    from click.testing import CliRunner

    from calosim.cli.main import main

    src = write_showers(tmp_path / "all.h5", make_showers(30, seed=4))
    out = tmp_path / "part.h5"
    result = CliRunner().invoke(main, ["data", "slice", str(src), "--rows", "10", "25", "-o", str(out)])
    assert result.exit_code == 0, result.output
    part, whole = read_showers(out), read_showers(src)
    assert len(part) == 15
    for a, b in zip(part.layers, whole.layers):
        np.testing.assert_array_equal(a, b[10:25])
    np.testing.assert_array_equal(part.energy, whole.energy[10:25])
    for rows in (["20", "40"], ["5", "5"]):
        result = CliRunner().invoke(main, ["data", "slice", str(src), "--rows", *rows, "-o", str(tmp_path / "x.h5")])
        assert result.exit_code != 0 and "Traceback" not in result.output and not (tmp_path / "x.h5").exists()
