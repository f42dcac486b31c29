import numpy as np
import pytest

from calosim.data import Showers, read_showers, write_showers
from calosim.data.bundled import HELD_OUT_ROWS, SOURCE_ROWS, TEST_ROWS, bundled_path, list_bundled
from calosim.data.dataset import ShowerDataset, split
from calosim.errors import DataError
from calosim.geometry import calogan_geometry


@pytest.fixture
def path(tmp_path):
    g = calogan_geometry()
    n = 103
    layers = [np.zeros((n,) + s, np.float32) for s in g.shapes]
    layers[0][:, 0, 0] = np.arange(n)  # row id in a cell, to trace rows
    energy = np.linspace(1, 100, n).astype(np.float32)
    return write_showers(tmp_path / "ds.h5", Showers(layers, energy, g, np.zeros((n, 3), np.float32), "e+"))


def ids(batches):
    return [b.layers[0][:, 0, 0].astype(int).tolist() for b in batches]


def test_full_coverage_and_batch_sizes(path):
    ds = ShowerDataset(path, chunk_size=10, batch_size=8, shuffle=True, rng=np.random.default_rng(1))
    got = ids(ds)
    assert sorted(sum(got, [])) == list(range(103))
    assert [len(b) for b in got] == [8] * 12 + [7] and ds.n_batches == 13
    assert got != [list(range(i, min(i + 8, 103))) for i in range(0, 103, 8)]  # shuffled


def test_shuffle_determinism(path):
    a = ids(ShowerDataset(path, chunk_size=16, batch_size=10, rng=np.random.default_rng(5)))
    b = ids(ShowerDataset(path, chunk_size=16, batch_size=10, rng=np.random.default_rng(5)))
    c = ids(ShowerDataset(path, chunk_size=16, batch_size=10, rng=np.random.default_rng(6)))
    assert a == b and a != c
    ds = ShowerDataset(path, chunk_size=16, batch_size=10, rng=np.random.default_rng(5))
    assert ids(ds) == a and ids(ds) != a  # the next epoch draws a new order


def test_no_shuffle_is_file_order_and_drop_last(path):
    ds = ShowerDataset(path, chunk_size=7, batch_size=10, shuffle=False, drop_last=True)
    assert sum(ids(ds), []) == list(range(100))


def test_split_and_rows(path):
    train, val = split(path, 0.2)
    assert train == range(0, 82) and val == range(82, 103)
    assert split(10, 0.0) == (range(0, 10), range(10, 10))
    ds = ShowerDataset(path, chunk_size=50, batch_size=16, rows=val, arrays=True, rng=np.random.default_rng(0))
    seen = []
    for layers, energy in ds:
        assert len(layers) == 3 and energy.dtype == np.float32 and layers[0].shape[1:] == (3, 96)
        seen += layers[0][:, 0, 0].astype(int).tolist()
    assert sorted(seen) == list(range(82, 103))
    assert len(ds.load()) == 21
    with pytest.raises(DataError, match="rows"):
        ShowerDataset(path, rows=range(0, 500))


def test_bundled_sample():
    assert [b["name"] for b in list_bundled()] == ["eplus", "eplus-test"]
    assert all(b["path"] is not None for b in list_bundled())
    test = read_showers(bundled_path("eplus-test"), 0, 5)
    assert test.attrs["source_rows"] == f"{TEST_ROWS.start}-{TEST_ROWS.stop - 1}"
    assert TEST_ROWS.start >= SOURCE_ROWS.stop  # the evaluation sample was never trained on
    s = read_showers(bundled_path("eplus"), 0, 50)
    assert len(s) == 50 and s.particle == "e+"
    assert s.attrs["source_rows"] == f"{SOURCE_ROWS.start}-{SOURCE_ROWS.stop - 1}"
    assert str(HELD_OUT_ROWS.start) in s.attrs["held_out_rows"]
    with pytest.raises(DataError, match="no bundled sample"):
        bundled_path("muon")
