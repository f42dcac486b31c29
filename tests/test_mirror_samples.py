"""Mirrored sampling (ShowerModel.sampling_mirror_axes): each sampled shower reflected at random along the axes its
geometry is mirror symmetric under, the same in every layer; kept in model files, on by default in training where
the geometry is symmetric, and part of the exported ONNX graph."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from family_helpers import TINY_GEOMETRY, tiny_showers

from calosim.backends import get_backend
from calosim.data import write_showers
from calosim.errors import ConfigError, DataError
from calosim.geometry import Geometry, LayerGeometry
from calosim.models.files import load_model, save_model
from calosim.training import train

onnx_check = pytest.importorskip("calosim.export.check")
pytest.importorskip("onnxruntime")


def _tiny_model(case="vae-small", factorised=False):
    from test_export_onnx import factorised_model, tiny_model

    model = factorised_model(case) if factorised else tiny_model(case)
    model.set_sampling_mirror_axes(model.geometry.mirror_axes())
    return model


def test_apply_mirror_reflects_the_drawn_showers_in_every_layer_alike():
    model = _tiny_model()
    n = 6
    layers = [np.arange(n * layer.n_cells, dtype=np.float32).reshape(n, *layer.shape) for layer in TINY_GEOMETRY.layers]
    rows = np.array([0.1, 0.9, 0.2, 0.7, 0.4, 0.6])  # axis 0: showers 0, 2, 4 reflected
    cols = np.array([0.9, 0.3, 0.3, 0.8, 0.1, 0.9])  # axis 1: showers 1, 2, 4
    out = model.apply_mirror(layers, onnx_check.GivenDraws([rows, cols]))
    for x, y in zip(layers, out):
        for i in range(n):
            want = x[i]
            if rows[i] < 0.5:
                want = want[::-1, :]
            if cols[i] < 0.5:
                want = want[:, ::-1]
            np.testing.assert_array_equal(y[i], want)


def test_mirrored_samples_are_symmetric_where_the_model_is_not():
    """A model whose showers lean to one side: its mirrored samples' mean image is symmetric within statistics."""
    model = _tiny_model("calogan-small")
    energy = np.full(4000, 50.0)

    def column_lean(layers):
        x = np.asarray(layers[1], np.float64)  # (N, 12, 12)
        mean = x.mean(axis=0)
        return float((mean[:, :6].sum() - mean[:, 6:].sum()) / mean.sum())

    model.sampling_mirror_axes = ()
    plain = model.sample(energy, np.random.default_rng(0))
    model.set_sampling_mirror_axes((0, 1))
    mirrored = model.sample(energy, np.random.default_rng(0))
    assert abs(column_lean(plain)) > 0.05  # the untrained generator leans
    assert abs(column_lean(mirrored)) < 0.02
    # the same showers, some reflected: every mirrored shower is one of the four reflections of the plain one
    for a, b in zip(plain[1][:50], mirrored[1][:50]):
        assert any(np.array_equal(b, r) for r in (a, a[::-1], a[:, ::-1], a[::-1, ::-1]))


@pytest.mark.parametrize("case,factorised", [("vae-small", True), ("calogan-small", False)])
def test_onnx_runtime_agrees_with_mirrored_sampling(case, factorised):
    from calosim.export.onnx_model import onnx_graph

    model = _tiny_model(case, factorised).freeze()
    proto = onnx_graph(model)
    inputs = [i.name for i in proto.graph.input]
    assert inputs[-1] == "mirror_uniform"  # the last draws of sample
    rows = onnx_check.check_agreement(model, proto.SerializeToString(), batch_sizes=(1, 500), seed=1)
    for r in rows:
        assert r.passed, r
    # and reflections do happen in the graph: other uniforms, other showers
    sess = onnx_check.session(proto.SerializeToString())
    feeds = onnx_check.draw_inputs(sess, model, 200, np.random.default_rng(3))
    a = sess.run(None, {**feeds, "mirror_uniform": np.full_like(feeds["mirror_uniform"], 0.9)})
    b = sess.run(None, {**feeds, "mirror_uniform": np.full_like(feeds["mirror_uniform"], 0.1)})
    np.testing.assert_allclose(b[1], a[1][:, ::-1, ::-1], rtol=0, atol=1e-6 * np.abs(a[1]).max())


def test_model_files_keep_the_axes_and_refuse_axes_the_geometry_lacks(tmp_path):
    model = _tiny_model()
    path = save_model(tmp_path / "m.h5", model)
    assert load_model(path, get_backend("numpy")).sampling_mirror_axes == (0, 1)
    with h5py.File(path, "a") as f:
        f.attrs["sampling_mirror_axes"] = "[0, 1"
    with pytest.raises(DataError, match="malformed sampling_mirror_axes"):
        load_model(path, get_backend("numpy"))
    model.geometry = Geometry("polar", (LayerGeometry("layer_0", (10, 3), (0.628, 5.0), r_edges=(0, 4, 10, 20)),))
    with pytest.raises(ConfigError, match="mirror symmetric under"):  # r is not symmetric
        model.set_sampling_mirror_axes((0, 1))


def test_training_turns_it_on_where_the_geometry_is_symmetric_and_a_resume_keeps_the_choice(tmp_path):
    data = write_showers(tmp_path / "tiny.h5", tiny_showers(60))
    kw = dict(data=data, backend="numpy", model_type="vae", config="small", seed=1, batch_size=16)
    train(tmp_path / "on", epochs=1, **kw)
    assert json.loads((tmp_path / "on" / "run.json").read_text())["sampling_mirror_axes"] == [0, 1]
    assert load_model(tmp_path / "on" / "last.h5", get_backend("numpy")).sampling_mirror_axes == (0, 1)
    train(tmp_path / "off", epochs=1, mirror_samples=False, **kw)
    train(tmp_path / "off", epochs=2, resume=True, **kw)  # no flag: the run's choice
    assert load_model(tmp_path / "off" / "last.h5", get_backend("numpy")).sampling_mirror_axes == ()
    with pytest.raises(Exception, match="--mirror-samples"):
        train(tmp_path / "off", epochs=3, resume=True, mirror_samples=True, **kw)
