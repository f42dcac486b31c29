"""The cell-energy spectrum per layer (calosim.evaluate.cell_spectrum) and its plot."""

from __future__ import annotations

import numpy as np
import pytest

from calosim.evaluate.cell_spectrum import compare_cell_spectra, log_spectrum_edges, nonzero_cells


def _layers(rng, n, floor_mev=0.0, occupancy=0.5, shapes=((3, 8), (4, 4))):
    """Showers whose non-zero cells are log-normal around 1 MeV; cells below ``floor_mev`` are set to 0."""
    layers = []
    for shape in shapes:
        cells = np.exp(rng.normal(0.0, 2.5, size=(n, *shape)))
        cells[rng.random(size=cells.shape) > occupancy] = 0.0
        cells[cells < floor_mev] = 0.0
        layers.append(cells.astype(np.float32))
    return layers


def test_nonzero_cells_keeps_every_positive_cell_of_every_shower():
    layer = np.array([[[0.0, 2.0], [0.5, 0.0]], [[0.0, 0.0], [3.0, 1e-6]]], np.float32)
    assert sorted(nonzero_cells(layer)) == pytest.approx([1e-6, 0.5, 2.0, 3.0])


def test_identical_spectra_have_zero_separation_and_equal_quantiles():
    layers = _layers(np.random.default_rng(0), 300)
    res = compare_cell_spectra(layers, layers, ["a", "b"])
    for m in res["layers"].values():
        assert m["sep_power"] == 0.0
        assert m["quantiles_ref_mev"] == m["quantiles_gen_mev"]
    assert res["mean_sep_power"] == 0.0


def test_a_floor_shows_in_the_quantiles_and_the_separation_power():
    rng = np.random.default_rng(1)
    ref, same, floored = _layers(rng, 2_000), _layers(rng, 2_000), _layers(rng, 2_000, floor_mev=0.15)
    res_same = compare_cell_spectra(ref, same)
    res_floor = compare_cell_spectra(ref, floored)
    for name, m in res_floor["layers"].items():
        cells = nonzero_cells(ref[int(name[-1])])
        assert m["quantiles_ref_mev"]["1%"] == pytest.approx(np.quantile(cells, 0.01))
        assert m["quantiles_ref_mev"]["50%"] == pytest.approx(np.median(cells))
        assert m["quantiles_ref_mev"]["1%"] < 0.05 and m["quantiles_gen_mev"]["1%"] >= 0.15
        # about a quarter of a log-normal(0, 2.5) lies below 0.15 MeV: far above the statistical floor
        assert m["sep_power"] > 0.1 > 20 * res_same["layers"][name]["sep_power"]
        assert m["nonzero_per_shower_gen"] < m["nonzero_per_shower_ref"]


def test_log_spectrum_edges_ignore_stray_tiny_deposits():
    rng = np.random.default_rng(2)
    cells = np.exp(rng.normal(0.0, 1.0, size=5_000))
    with_stray = np.concatenate([cells, [1e-24]])
    edges = log_spectrum_edges(with_stray, cells, n_bins=50)
    assert edges[0] > -4  # log10 MeV: the 1e-24 MeV cell does not set the range
    assert edges[-1] == pytest.approx(np.log10(cells.max()))


def test_empty_layers_give_nan_not_an_error():
    empty = [np.zeros((5, 2, 2))]
    res = compare_cell_spectra(empty, empty)
    layer = res["layers"]["layer_0"]
    assert np.isnan(layer["sep_power"]) and layer["quantiles_ref_mev"]["1%"] is None


def test_mismatched_layer_counts_are_refused():
    with pytest.raises(ValueError, match="layers"):
        compare_cell_spectra([np.zeros((2, 1, 1))], [np.zeros((2, 1, 1))] * 2)


def test_plot_cell_spectra_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib", reason="plots need matplotlib")
    from calosim.evaluate.plots import plot_cell_spectra

    rng = np.random.default_rng(3)
    ref, gen = _layers(rng, 200), _layers(rng, 200, floor_mev=0.15)
    metrics = compare_cell_spectra(ref, gen, ["a", "b"])["layers"]
    path = plot_cell_spectra([nonzero_cells(x) for x in ref], [nonzero_cells(x) for x in gen],
                             tmp_path / "spectrum.png", ["a", "b"], metrics)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
