"""``evaluate``: compare generated showers with reference (Geant4) showers and write a report.

REPORT_DIR/metrics.json   every number (observable metrics inclusive and per energy range, FPD and KPD on the
                          high-level features, the cell-energy spectrum per layer, classifier tests,
                          memorisation check, timings); NaN written as null
REPORT_DIR/plots/*.png    one histogram per observable, average images per layer, cell-energy spectra, ROC curves
REPORT_DIR/report.md      tables of all metrics with the plots embedded
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from calosim._version import __version__
from calosim.data.formats import read_showers
from calosim.data.showers import Showers
from calosim.errors import DataError
from calosim.evaluate.cell_spectrum import compare_cell_spectra, nonzero_cells
from calosim.evaluate.classifier import ClassifierConfig, classifier_test, high_level_features, low_level_features
from calosim.evaluate.distances import KPD_KERNEL_DEGREE, fpd_kpd_for_samples, standardise_by_reference
from calosim.evaluate.memorisation import memorisation_check
from calosim.evaluate.metrics import compare_observables, default_energy_ranges, response_core_width
from calosim.evaluate.observables import default_observables, unit_of
from calosim.evaluate.report_text import format_markdown, format_summary  # noqa: F401 (re-exported)


def _load(source, max_showers: int | None, binning) -> tuple[Showers, str]:
    if isinstance(source, Showers):
        return (source if max_showers is None else source.subset(slice(0, max_showers))), "<in memory>"
    return read_showers(source, 0, max_showers, binning=binning), str(source)


def _describe(showers: Showers, path: str) -> dict:
    e = np.asarray(showers.energy, np.float64)
    return {"path": path, "n": len(showers), "particle": showers.particle, "geometry": showers.geometry.name,
            "energy_min_gev": float(e.min()) if e.size else None,
            "energy_max_gev": float(e.max()) if e.size else None}


def feature_distances(ref_obs: dict[str, np.ndarray], gen_obs: dict[str, np.ndarray], ref_energy: np.ndarray,
                      gen_energy: np.ndarray, seed: int) -> dict:
    """FPD and KPD (calosim.evaluate.distances) on the high-level features the classifier sees, standardised
    with the reference's mean and std as the CaloChallenge does, then scaled by jetnet's max-abs normalisation.
    """
    x_ref, x_gen = standardise_by_reference(high_level_features(ref_obs, ref_energy),
                                            high_level_features(gen_obs, gen_energy))
    res = fpd_kpd_for_samples(x_ref, x_gen, np.random.default_rng(seed))
    names = ["log10_E_inc"] + [n for n in ref_obs if n in gen_obs]
    return {"fpd": res["fpd"]["value"], "fpd_error": res["fpd"]["error"],
            "kpd": res["kpd"]["value"], "kpd_error": res["kpd"]["error"],
            "features": names,
            "preprocessing": "high-level features (log10 E_inc; energies as log10(1 + E/MeV)) standardised with "
                             "the reference's mean and std, then divided by the reference's max |value| "
                             "(jetnet normalise=True)",
            "fpd_batch_sizes": res["fpd"]["batch_sizes"], "fpd_batches_per_size": res["fpd"]["batches_per_size"],
            "kpd_batch_size": res["kpd"]["batch_size"], "kpd_batches": len(res["kpd"]["per_batch"]),
            "kpd_kernel": f"(x.y / D + 1)^{KPD_KERNEL_DEGREE}", "seed": seed}


def _jsonable(obj):
    """NaN / inf -> None, NumPy scalars and arrays -> Python, recursively."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    return obj


def evaluate(reference_path, generated_path, out_dir, train_path=None, backend: str = "numpy",
             max_showers: int | None = None, seed: int = 0, binning=None,
             energy_ranges: list[tuple[float, float]] | None = None,
             classifier_config: ClassifierConfig | None = None, run_classifier: bool = True,
             make_plots: bool = True, memorisation_samples: int = 1000, baseline_path=None) -> dict:
    """Compare generated with reference showers; write metrics.json, plots/ and report.md under ``out_dir``.

    reference_path, generated_path, train_path: shower files (CaloGAN or CaloChallenge layout; ``binning``
    for challenge files without a geometry attribute) or Showers objects. ``max_showers`` reads at most that
    many showers (the first ones) of each file. ``train_path`` (the generator's training showers) turns on the
    memorisation check; the reference showers must then be held out from training. ``backend`` runs the
    classifier ("numpy" | "numba" | "cupy"); ``seed`` fixes its splits and initialisation. ``baseline_path``
    (other generated showers, e.g. of the untrained generator: `calosim generate --initial-weights`) adds
    its separation power beside the generated one's for every observable, and which of the two is closer.

    Returns the metrics dict (as written to metrics.json).
    """
    t_start = time.perf_counter()
    timing: dict[str, float] = {}
    out = Path(out_dir)
    plot_dir = out / "plots"

    ref, ref_name = _load(reference_path, max_showers, binning)
    gen, gen_name = _load(generated_path, max_showers, binning)
    if ref.geometry.shapes != gen.geometry.shapes:
        raise DataError(f"{gen_name}: geometry {gen.geometry.name} {list(gen.geometry.shapes)} differs from the "
                        f"reference's {ref.geometry.name} {list(ref.geometry.shapes)}")
    if len(ref) < 10 or len(gen) < 10:
        raise DataError(f"too few showers to compare: {len(ref)} reference, {len(gen)} generated (10 at least)")
    try:  # only once the inputs are good, and plots/ only when plots are made
        (plot_dir if make_plots else out).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{out}: cannot create the report directory ({exc})") from None
    timing["read_s"] = time.perf_counter() - t_start

    t = time.perf_counter()
    ref_obs, gen_obs = default_observables(ref), default_observables(gen)
    if energy_ranges is None:
        energy_ranges = default_energy_ranges(np.concatenate([ref.energy, gen.energy]))
    obs_metrics = compare_observables(ref_obs, gen_obs, ref.energy, gen.energy, energy_ranges)
    timing["observables_s"] = time.perf_counter() - t

    metrics: dict = {
        "calosim_version": __version__,
        "reference": _describe(ref, ref_name),
        "generated": _describe(gen, gen_name),
        "seed": seed,
        "energy_ranges": [list(r) for r in energy_ranges],
        "observables": obs_metrics,
    }

    t = time.perf_counter()
    metrics["feature_distances"] = feature_distances(ref_obs, gen_obs, ref.energy, gen.energy, seed)
    timing["fpd_kpd_s"] = time.perf_counter() - t
    t = time.perf_counter()
    layer_names = [lg.name for lg in ref.geometry.layers]
    metrics["cell_spectrum"] = compare_cell_spectra(ref.layers, gen.layers, layer_names)
    timing["cell_spectrum_s"] = time.perf_counter() - t

    # <E_tot / E_inc> of each sample (default_observables always has the per-shower response)
    metrics["mean_response"] = {"reference": float(ref_obs["response"].mean()),
                                "generated": float(gen_obs["response"].mean())}
    # the width of the response's core, half its 16-84% interval (a Gaussian's sigma, blind to the tails)
    metrics["response_core_width"] = {"reference": response_core_width(ref_obs["response"]),
                                      "generated": response_core_width(gen_obs["response"])}
    if baseline_path is not None:
        base, base_name = _load(baseline_path, max_showers, binning)
        if base.geometry.shapes != ref.geometry.shapes:
            raise DataError(f"{base_name}: geometry {list(base.geometry.shapes)} differs from the reference's")
        base_obs = default_observables(base)
        base_metrics = compare_observables(ref_obs, base_obs, ref.energy, base.energy, [])
        sep_base = {n: m["sep_power"] for n, m in base_metrics["inclusive"].items()}
        sep_gen = {n: m["sep_power"] for n, m in obs_metrics["inclusive"].items() if n in sep_base}
        metrics["baseline"] = {"sample": _describe(base, base_name), "sep_power": sep_base,
                               "mean_sep_power": base_metrics["mean_sep_power"],
                               "closer": [n for n in sep_gen if sep_gen[n] < sep_base[n]],
                               "not_closer": [n for n in sep_gen if not sep_gen[n] < sep_base[n]]}
        metrics["mean_response"]["baseline"] = float(base_obs["response"].mean())
        metrics["response_core_width"]["baseline"] = response_core_width(base_obs["response"])
        metrics["baseline"]["feature_distances"] = feature_distances(ref_obs, base_obs, ref.energy, base.energy, seed)

    roc_inputs = {}
    if run_classifier:
        config = classifier_config or ClassifierConfig()
        metrics["classifier"] = {}
        inputs = {
            "low_level": (low_level_features(ref.layers, ref.energy), low_level_features(gen.layers, gen.energy),
                          False),
            "high_level": (high_level_features(ref_obs, ref.energy), high_level_features(gen_obs, gen.energy),
                           True),
        }
        for k, (name, (x_ref, x_gen, standardise)) in enumerate(inputs.items()):
            t = time.perf_counter()
            res = classifier_test(x_ref, x_gen, backend=backend, config=config, seed=seed + k,
                                  standardise=standardise, energy_ref=ref.energy, energy_gen=gen.energy,
                                  energy_ranges=energy_ranges, return_scores=True)
            roc_inputs[f"{name} (AUC {res['auc']:.3f})"] = (res.pop("val_labels"), res.pop("val_scores"))
            res["wall_s"] = time.perf_counter() - t
            timing[f"classifier_{name}_s"] = res["wall_s"]
            metrics["classifier"][name] = res

    if train_path is not None:
        t = time.perf_counter()
        train, train_name = _load(train_path, max_showers, binning)
        if train.geometry.shapes != ref.geometry.shapes:
            raise DataError(f"{train_name}: geometry {list(train.geometry.shapes)} differs from the reference's")
        mem = memorisation_check(gen.flat(), ref.flat(), train.flat(), n_samples=memorisation_samples,
                                 rng=np.random.default_rng(seed))
        mem["train"] = _describe(train, train_name)
        metrics["memorisation"] = mem
        timing["memorisation_s"] = time.perf_counter() - t
    else:
        metrics["memorisation"] = None

    plots: list[str] = []
    if make_plots:
        from calosim.evaluate.plots import plot_average_images, plot_cell_spectra, plot_observable, plot_roc

        t = time.perf_counter()
        for name in ref_obs:
            p = plot_observable(name, ref_obs[name], gen_obs[name], plot_dir / f"obs_{name}.png", unit_of(name),
                                obs_metrics["inclusive"].get(name))
            plots.append(str(p.relative_to(out)))
        p = plot_average_images(ref.layers, gen.layers, plot_dir / "average_images.png", ref.geometry)
        plots.append(str(p.relative_to(out)))
        p = plot_cell_spectra([nonzero_cells(x) for x in ref.layers], [nonzero_cells(x) for x in gen.layers],
                              plot_dir / "cell_spectrum.png", layer_names, metrics["cell_spectrum"]["layers"],
                              n_bins=metrics["cell_spectrum"]["n_bins"])
        plots.append(str(p.relative_to(out)))
        if roc_inputs:
            p = plot_roc(roc_inputs, plot_dir / "roc.png")
            plots.append(str(p.relative_to(out)))
        timing["plots_s"] = time.perf_counter() - t
    metrics["plots"] = plots
    timing["total_s"] = time.perf_counter() - t_start
    metrics["timing"] = timing

    metrics = _jsonable(metrics)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out / "report.md").write_text(format_markdown(metrics))
    return metrics
