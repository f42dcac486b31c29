"""`calosim evaluate` end to end on small slices of the Geant4 files: metrics.json, plots and report.md."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from calosim.cli.main import main
from calosim.data.formats import read_showers, write_showers
from calosim.evaluate.observables import CALOGAN_OBSERVABLES


def slice_file(src, dst, start, stop):
    write_showers(dst, read_showers(src, start, stop), seed=0, producer="test slice")
    return str(dst)


def test_cli_writes_metrics_plots_and_report(shared_data, tmp_path):
    src = shared_data / "geant4" / "eplus_train.h5"
    ref = slice_file(src, tmp_path / "ref.h5", 0, 300)
    gen = slice_file(src, tmp_path / "gen.h5", 300, 600)
    train = slice_file(src, tmp_path / "train.h5", 600, 1200)
    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["evaluate", "--reference", ref, "--generated", gen, "--train", train,
                                       "--out", str(out), "--backend", "numpy", "--epochs", "3",
                                       "--max-showers", "250", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "low_level" in result.output and "sigma_1" in result.output and "memorisation: ok" in result.output

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["reference"]["n"] == 250 and metrics["generated"]["n"] == 250
    assert set(CALOGAN_OBSERVABLES) <= set(metrics["observables"]["inclusive"])
    for m in metrics["observables"]["inclusive"].values():
        assert 0 <= m["sep_power"] <= 1 and 0 <= m["ks"] <= 1
    assert metrics["observables"]["energy_ranges"], "per energy range results"
    for name in ("low_level", "high_level"):
        cls = metrics["classifier"][name]
        assert 0 <= cls["auc"] <= 1 and cls["epochs_run"] <= 3 and len(cls["per_energy_range"]) >= 1
    assert metrics["memorisation"]["flag"] is False
    assert metrics["timing"]["total_s"] > 0
    fd = metrics["feature_distances"]
    assert fd["fpd"] >= 0 and fd["fpd_error"] >= 0 and fd["kpd_error"] >= 0 and fd["kpd"] is not None
    assert fd["features"][0] == "log10_E_inc"
    assert "standardised with the reference's mean and std" in fd["preprocessing"]
    assert fd["fpd_batch_sizes"][-1] == 250 and fd["kpd_batch_size"] == 250
    spectrum = metrics["cell_spectrum"]["layers"]
    assert list(spectrum) == ["layer_0", "layer_1", "layer_2"]
    for m in spectrum.values():
        assert 0 <= m["sep_power"] < 0.1  # Geant4 against Geant4
        assert 0 < m["quantiles_ref_mev"]["1%"] < m["quantiles_ref_mev"]["50%"]

    pngs = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert "average_images.png" in pngs and "roc.png" in pngs and "obs_sigma_0.png" in pngs
    assert "cell_spectrum.png" in pngs
    assert len(pngs) == len(metrics["observables"]["inclusive"]) + 3
    for p in (out / "plots").glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    assert "![average images](plots/average_images.png)" in report and "| sigma_0 |" in report
    assert "## FPD and KPD" in report and "## Cell-energy spectrum" in report and "| layer_1 |" in report
    assert "FPD x 10^3" in result.output and "layer_2: S(log bins)" in result.output
    assert all(f"plots/{p}" in report for p in pngs)


def test_cli_reports_mismatched_geometry_without_traceback(shared_data, tmp_path):
    ref = slice_file(shared_data / "geant4" / "eplus_train.h5", tmp_path / "ref.h5", 0, 20)
    from calosim.data.showers import Showers
    from calosim.geometry import single_layer_geometry

    other = Showers([np.ones((20, 25, 25), np.float32)], np.full(20, 10.0, np.float32), single_layer_geometry())
    write_showers(tmp_path / "lagan.h5", other)
    result = CliRunner().invoke(main, ["evaluate", "--reference", ref, "--generated", str(tmp_path / "lagan.h5"),
                                       "--out", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert "differs from the reference" in result.output and "Traceback" not in result.output
    missing = CliRunner().invoke(main, ["evaluate", "--reference", str(tmp_path / "nope.h5"), "--generated", ref,
                                        "--out", str(tmp_path / "r")])
    assert missing.exit_code == 1 and "nope.h5" in missing.output


def test_cli_baseline_side_by_side(shared_data, tmp_path):
    """Geant4 e+ against held-out Geant4 e+, with Geant4 pi+ as the baseline: the e+ sample is closer on the
    shower shapes, the pi+ one on nothing that matters, and the report says so per observable."""
    ref = slice_file(shared_data / "geant4" / "eplus_train.h5", tmp_path / "ref.h5", 0, 400)
    gen = slice_file(shared_data / "geant4" / "eplus_train.h5", tmp_path / "gen.h5", 400, 800)
    pions = slice_file(shared_data / "geant4" / "piplus_train.h5", tmp_path / "pions.h5", 0, 400)
    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["evaluate", "--reference", ref, "--generated", gen, "--baseline", pions,
                                       "--out", str(out), "--no-classifier", "--no-plots"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    base = metrics["baseline"]
    assert base["sample"]["n"] == 400 and set(base["sep_power"]) == set(metrics["observables"]["inclusive"])
    for name in ("E_tot", "f_2", "sigma_1", "shower_depth", "sparsity_2"):
        assert name in base["closer"], (name, base["sep_power"][name])
        assert base["sep_power"][name] > 5 * metrics["observables"]["inclusive"][name]["sep_power"]
    assert len(base["closer"]) >= 18 and set(base["closer"]) | set(base["not_closer"]) == set(base["sep_power"])
    response = metrics["mean_response"]
    assert abs(response["generated"] - response["reference"]) < 0.01 < response["reference"] - response["baseline"]
    assert f"closer to the reference than the baseline on {len(base['closer'])} of" in result.output
    assert "S(10 q) baseline" in (out / "report.md").read_text()
