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
