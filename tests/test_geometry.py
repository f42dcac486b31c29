import json
from pathlib import Path

import numpy as np
import pytest

from calosim.errors import DataError
from calosim.geometry import Geometry, calochallenge_geometry, calogan_geometry, single_layer_geometry

BINNING = Path(__file__).resolve().parents[2] / "shared" / "data" / "calochallenge_binning"


def test_calogan_geometry():
    g = calogan_geometry()
    assert g.shapes == ((3, 96), (12, 12), (12, 6))
    assert g.n_layers == 3 and g.n_cells == 288 + 144 + 72 == 504
    assert g.layers[0].cell_size == (160.0, 5.0)
    np.testing.assert_allclose(g.layers[1].row_edges(), np.linspace(-240, 240, 13))


def test_dict_round_trip_is_json():
    for g in (calogan_geometry(), single_layer_geometry(25, 25, "lagan")):
        d = json.loads(json.dumps(g.to_dict()))
        assert Geometry.from_dict(d) == g


def test_flatten_unflatten():
    g = calogan_geometry()
    rng = np.random.default_rng(0)
    layers = [rng.random((4,) + s).astype(np.float32) for s in g.shapes]
    flat = g.flatten(layers)
    assert flat.shape == (4, 504)
    np.testing.assert_array_equal(flat[:, :288], layers[0].reshape(4, -1))
    for a, b in zip(g.unflatten(flat), layers):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError):
        g.unflatten(flat[:, :10])


@pytest.mark.skipif(not BINNING.exists(), reason="shared CaloChallenge binning files not present")
@pytest.mark.parametrize("name,voxels,n_layers", [("binning_dataset_1_photons.xml", 368, 5),
                                                  ("binning_dataset_1_pions.xml", 533, 7),
                                                  ("binning_dataset_2.xml", 6480, 45),
                                                  ("binning_dataset_3.xml", 40500, 45)])
def test_calochallenge_binning(name, voxels, n_layers):
    g = calochallenge_geometry(BINNING / name)
    assert g.n_cells == voxels and g.n_layers == n_layers
    assert all(layer.polar and len(layer.r_edges) == layer.shape[1] + 1 for layer in g.layers)
    assert Geometry.from_dict(json.loads(json.dumps(g.to_dict()))) == g


def test_bad_binning_file(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text("<Bins><Bin><Layer id='0' r_edges='0,x' n_bin_alpha='1'/></Bin>")
    with pytest.raises(DataError, match="bad.xml"):
        calochallenge_geometry(bad)


def test_mirror_axes_come_from_the_cell_edges():
    from calosim.geometry import LayerGeometry

    assert calogan_geometry().mirror_axes() == (0, 1)  # every CaloGAN layer is centred on the beam
    polar = LayerGeometry("polar", (10, 3), (0.628, 5.0), r_edges=(0.0, 4.0, 10.0, 20.0))
    assert polar.mirror_axes() == ()  # r has no reflection onto itself
    assert Geometry("mixed", (calogan_geometry().layers[0], polar)).mirror_axes() == ()


def test_mirror_showers_reflects_every_layer_of_a_shower_alike():
    import numpy as np

    from calosim.data.dataset import mirror_showers

    rng = np.random.default_rng(0)
    layers = [rng.random((400, 3, 96)), rng.random((400, 12, 12))]
    before = [x.copy() for x in layers]
    out = mirror_showers(layers, np.random.default_rng(1), (0, 1))
    flips = np.random.default_rng(1)
    rows, cols = flips.random(400) < 0.5, flips.random(400) < 0.5
    for x, y in zip(layers, out):
        expected = np.where(rows[:, None, None], x[:, ::-1, :], x)
        expected = np.where(cols[:, None, None], expected[:, :, ::-1], expected)
        np.testing.assert_array_equal(y, expected)
    assert 0.4 < rows.mean() < 0.6 and 0.4 < cols.mean() < 0.6
    assert all(np.array_equal(a, b) for a, b in zip(layers, before))  # the input is left as it was
    sums = [x.sum(axis=(1, 2)) for x in out]
    np.testing.assert_allclose(sums[0], layers[0].sum(axis=(1, 2)))  # energies unchanged
