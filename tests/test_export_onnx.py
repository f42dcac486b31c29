"""calosim export --format onnx: every model type's sampling path as one ONNX graph, and ONNX Runtime agreeing
with calosim's own sampling path (numpy, float32) on the same inputs at batch 1 and 1000, to the stated
tolerance; energy-factorised models with the energy model's draws as inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the ONNX export needs the onnx extra: pip install 'calosim[onnx]'")
pytest.importorskip("onnxruntime", reason="the export check needs the onnx extra: pip install 'calosim[onnx]'")

from click.testing import CliRunner  # noqa: E402
from family_helpers import TINY_GEOMETRY  # noqa: E402

from calosim.backends import get_backend  # noqa: E402
from calosim.cli.main import main  # noqa: E402
from calosim.errors import ExportError  # noqa: E402
from calosim.export.check import RTOL, GivenDraws, check_agreement, draw_inputs, session  # noqa: E402
from calosim.export.onnx_model import onnx_graph  # noqa: E402
from calosim.geometry import calogan_geometry, single_layer_geometry  # noqa: E402
from calosim.models import registry  # noqa: E402
from calosim.models.base import ShowerModel  # noqa: E402
from calosim.models.energy import LayerEnergyConfig  # noqa: E402
from calosim.models.files import save_model  # noqa: E402

TINY = {  # (model type, config, overrides, geometry): every sampling-path feature of every type, small
    "calogan-paper": ("calogan", "calogan", dict(latent_dim=8, g_dense_channels=3, g_conv_filters=4, g_lc_filters=2),
                      calogan_geometry()),
    "calogan-small": ("calogan", "small", dict(latent_dim=8, g_dense_channels=3, g_conv_filters=4, g_lc_filters=2),
                      calogan_geometry()),
    "wgan-gp-small": ("wgan-gp", "small", dict(g_hidden=(16, 12), latent_dim=4), TINY_GEOMETRY),
    "wgan-gp-fastcalogan": ("wgan-gp", "fastcalogan", dict(g_hidden=(16,), latent_dim=4, transform="fraction"),
                            TINY_GEOMETRY),
    "vae-small": ("vae", "small", dict(hidden=(16, 8), latent_dim=4), TINY_GEOMETRY),
    "vae-vae": ("vae", "vae", dict(hidden=(16,), latent_dim=4, threshold_mev=1.0), TINY_GEOMETRY),
    "lagan-small": ("lagan", "small", {}, single_layer_geometry(25, 25)),
    "lagan-two-class": ("lagan", "small", dict(n_classes=2), single_layer_geometry(25, 25)),
}


def tiny_model(case: str, seed: int = 0):
    model_type, config, overrides, geometry = TINY[case]
    kind = registry.get_model_type(model_type)
    cfg = kind.get_config(config, **overrides)
    fitted = {"layer_energy_scales": np.array([0.2, 0.7, 0.1])} if getattr(cfg, "layer_energy_scaled", False) else None
    be = get_backend("numpy", "float32")
    rng = np.random.default_rng(seed)
    model = kind.build(cfg, geometry, be, rng, particle="e+", energy_range=(1.0, 100.0), fitted=fitted)
    for layer in model.walk():  # trained-looking BatchNorm statistics (fresh ones are 0 and 1)
        for key, value in layer.state.items():
            if key.startswith("moving"):
                layer.state[key] = be.asarray(np.abs(rng.standard_normal(value.shape)) + 0.5)
    return model


def factorised_model(case: str, seed: int = 0):
    """A tiny model with an energy model (--energy-model) whose standardisation makes layer 2 empty in about a
    third of the showers (its share snapped to 0) and layer 1 in a few, and whose clip range binds for the
    response and layer 1's share in some showers."""
    model = tiny_model(case, seed)
    model.fitted.update(energy_v_mean=np.array([0.5, 0.0, 12.0]), energy_v_std=np.array([0.3, 1.5, 2.0]),
                        energy_v_low=np.array([-2.0, -2.5, -20.0]), energy_v_high=np.array([2.0, 2.5, 20.0]))
    model.attach_energy_model(LayerEnergyConfig(hidden=8, components=3), np.random.default_rng(seed + 1))
    return model


def onnx_run(model, batch: int, seed: int = 2):
    """(session, feeds, ONNX Runtime's outputs) of the model's exported graph on drawn inputs."""
    sess = session(onnx_graph(model).SerializeToString())
    feeds = draw_inputs(sess, model, batch, np.random.default_rng(seed))
    return sess, feeds, sess.run(None, feeds)


@pytest.mark.parametrize("build,case", [(tiny_model, case) for case in TINY]
                         + [(factorised_model, case) for case in ("vae-small", "calogan-small", "wgan-gp-small")],
                         ids=[*TINY, "factorised-vae-small", "factorised-calogan-small", "factorised-wgan-gp-small"])
def test_onnx_runtime_agrees_with_calosim(build, case):
    """Every sampling-path feature of every type, and the energy-factorised models of three types."""
    model = build(case).freeze()
    rows = check_agreement(model, onnx_graph(model).SerializeToString(), batch_sizes=(1, 1000), seed=1)
    assert [r.batch_size for r in rows] == [1, 1000]
    for r in rows:
        assert r.passed and r.max_relative <= RTOL, r
    assert rows[-1].largest_cell_mev > 1.0  # showers, not zeros


def test_the_factorised_graph_takes_the_energy_draws_as_inputs():
    proto = onnx_graph(factorised_model("vae-small"))
    inputs = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in proto.graph.input}
    n_layers = TINY_GEOMETRY.n_layers
    assert inputs == {"z": ["N", 4], "energy": ["N"], "occupancy_uniform": ["N", TINY_GEOMETRY.n_cells],
                      "energy_uniform": ["N", n_layers], "energy_normal": ["N", n_layers]}
    assert list(inputs)[-2:] == ["energy_uniform", "energy_normal"]  # after generate's draws, as sample draws
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["energy_model"])["components"] == 3
    assert "standard normal" in json.loads(meta["inputs"])["energy_normal"]


def test_the_onnx_layer_sums_are_the_energy_models_draws():
    """Not an energy model ignored: each layer of ONNX Runtime's showers sums to the energy the energy model
    draws from the same uniforms and normals (where the shape model left no layer empty that the energy model
    fills), the layers the energy model empties among them; and other normals give other sums."""
    model = factorised_model("vae-small").freeze()
    sess, feeds, showers = onnx_run(model, 400)
    given = GivenDraws(list(feeds["energy_uniform"].T), list(feeds["energy_normal"].T))
    expected = model.energy_model.sample(feeds["energy"], given)
    sums = np.stack([x.reshape(len(x), -1).sum(axis=1) for x in showers], axis=1)
    whole = np.all((sums > 0) | (expected == 0), axis=1)
    assert whole.sum() > 100 and (expected[whole] == 0).any()
    np.testing.assert_allclose(sums[whole], expected[whole], rtol=1e-4, atol=1e-6 * expected.max())
    shifted = sess.run(None, {**feeds, "energy_normal": feeds["energy_normal"] + np.float32(0.5)})
    shifted_sums = np.stack([x.reshape(len(x), -1).sum(axis=1) for x in shifted], axis=1)
    assert np.abs(shifted_sums - sums).max(axis=0)[0] > 0.01 * sums[:, 0].max()


def test_the_factorised_graph_is_calosims_sample_given_the_same_draws():
    """ShowerModel.sample itself, its rng standing in for the latent vectors and the energy model's draws
    (CaloGAN's generate draws nothing of its own), gives ONNX Runtime's showers."""
    model = factorised_model("calogan-small").freeze()
    _, feeds, showers = onnx_run(model, 50)
    rng = GivenDraws(uniforms=list(feeds["energy_uniform"].T), normals=[feeds["z"], *feeds["energy_normal"].T])
    sampled = model.sample(feeds["energy"], rng)
    rng.check_used()
    for got, want in zip(showers, sampled):
        np.testing.assert_allclose(got, want, rtol=0, atol=RTOL * np.abs(want).max())


def test_graph_inputs_outputs_and_metadata_say_the_units():
    model = tiny_model("vae-small")
    proto = onnx_graph(model)
    inputs = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in proto.graph.input}
    assert inputs == {"z": ["N", 4], "energy": ["N"], "occupancy_uniform": ["N", TINY_GEOMETRY.n_cells]}
    outputs = {o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim] for o in proto.graph.output}
    assert outputs == {layer.name: ["N", *layer.shape] for layer in TINY_GEOMETRY.layers}
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["geometry"]) == TINY_GEOMETRY.to_dict()
    assert "GeV" in meta["units"] and "MeV" in meta["units"] and meta["model_type"] == "vae"
    assert json.loads(meta["energy_range_gev"]) == [1.0, 100.0] and meta["particle"] == "e+"
    assert proto.opset_import[0].version == int(meta["opset"])
    labelled = onnx_graph(tiny_model("lagan-two-class"))
    assert [i.name for i in labelled.graph.input] == ["z", "energy", "label"]


def test_the_check_fails_when_the_graph_does_not_match():
    model = tiny_model("vae-vae").freeze()
    data = onnx_graph(model).SerializeToString()
    kernel = model.decoder.layers[0].params["kernel"]
    kernel.value = kernel.value * np.float32(1.01)
    rows = check_agreement(model, data, batch_sizes=(1, 50))
    assert not any(r.passed for r in rows)


def test_a_model_type_without_an_export_says_so():
    with pytest.raises(ExportError, match="has no ONNX export"):
        ShowerModel.export_onnx(tiny_model("vae-vae"), None)


def test_export_cli_writes_the_file_and_checks_it(tmp_path):
    save_model(tmp_path / "wgan.h5", tiny_model("wgan-gp-small"))
    out = tmp_path / "generator.onnx"
    result = CliRunner().invoke(main, ["export", "--model", str(tmp_path / "wgan.h5"), "--format", "onnx", "-o",
                                       str(out), "--check"])
    assert result.exit_code == 0, result.output
    assert "largest |difference|" in result.output and "batch  1000" in result.output
    assert "FAILED" not in result.output and "opset 17" in result.output
    onnx.checker.check_model(onnx.load(out))
    assert [i.name for i in onnx.load(out).graph.input] == ["energy", "z", "empty_layer_uniform"]


def test_bench_onnx_times_both_runtimes_in_one_run(tmp_path):
    save_model(tmp_path / "lagan.h5", tiny_model("lagan-small"))
    result = CliRunner().invoke(main, ["bench", "--onnx", "--backend", "numpy", "--model", str(tmp_path / "lagan.h5"),
                                       "--batch-sizes", "1,3", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [r["batch_size"] for r in report["rows"]] == [1, 3]
    for r in report["rows"]:
        assert r["onnx_ms_per_shower"] > 0 and r["calosim_ms_per_shower"] > 0
        assert r["calosim_over_onnx"] == pytest.approx(r["calosim_ms_per_shower"] / r["onnx_ms_per_shower"])


def test_export_and_bench_onnx_of_an_energy_factorised_model(tmp_path):
    save_model(tmp_path / "vae.h5", factorised_model("vae-small"))
    out = tmp_path / "generator.onnx"
    result = CliRunner().invoke(main, ["export", "--model", str(tmp_path / "vae.h5"), "-o", str(out), "--check"])
    assert result.exit_code == 0, result.output
    assert "FAILED" not in result.output and "energy_normal" in result.output
    result = CliRunner().invoke(main, ["bench", "--onnx", "--backend", "numpy", "--model", str(tmp_path / "vae.h5"),
                                       "--batch-sizes", "1,3", "--json"])
    assert result.exit_code == 0, result.output
    assert [r["batch_size"] for r in json.loads(result.output)["rows"]] == [1, 3]
