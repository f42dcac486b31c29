"""``evaluate``: compare generated showers with reference (Geant4) showers and write a report.

REPORT_DIR/metrics.json   every number (observable metrics inclusive and per energy range, classifier tests,
                          memorisation check, timings); NaN written as null
REPORT_DIR/plots/*.png    one histogram per observable, average images per layer, ROC curves
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
from calosim.evaluate.classifier import ClassifierConfig, classifier_test, high_level_features, low_level_features
from calosim.evaluate.memorisation import memorisation_check
from calosim.evaluate.metrics import compare_observables, default_energy_ranges
from calosim.evaluate.observables import default_observables, unit_of


def _load(source, max_showers: int | None, binning) -> tuple[Showers, str]:
    if isinstance(source, Showers):
        return (source if max_showers is None else source.subset(slice(0, max_showers))), "<in memory>"
    return read_showers(source, 0, max_showers, binning=binning), str(source)


def _describe(showers: Showers, path: str) -> dict:
    e = np.asarray(showers.energy, np.float64)
    return {"path": path, "n": len(showers), "particle": showers.particle, "geometry": showers.geometry.name,
            "energy_min_gev": float(e.min()) if e.size else None,
            "energy_max_gev": float(e.max()) if e.size else None}


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

    # <E_tot / E_inc> of each sample (default_observables always has the per-shower response)
    metrics["mean_response"] = {"reference": float(ref_obs["response"].mean()),
                                "generated": float(gen_obs["response"].mean())}
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
        from calosim.evaluate.plots import plot_average_images, plot_observable, plot_roc

        t = time.perf_counter()
        for name in ref_obs:
            p = plot_observable(name, ref_obs[name], gen_obs[name], plot_dir / f"obs_{name}.png", unit_of(name),
                                obs_metrics["inclusive"].get(name))
            plots.append(str(p.relative_to(out)))
        p = plot_average_images(ref.layers, gen.layers, plot_dir / "average_images.png", ref.geometry)
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


# ---------------------------------------------------------------------------------------------- text
def _f(v, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def format_summary(metrics: dict) -> str:
    """A short plain-text table: inputs, per observable separation power and KS, classifier AUCs,
    memorisation verdict and the run time."""
    ref, gen = metrics["reference"], metrics["generated"]
    lines = [f"reference: {ref['path']} ({ref['n']} {ref['particle']} showers)",
             f"generated: {gen['path']} ({gen['n']} {gen['particle']} showers)", ""]
    obs = metrics["observables"]["inclusive"]
    base = metrics.get("baseline")
    width = max([len(n) for n in obs] + [10])
    if base:
        lines.insert(2, f"baseline:  {base['sample']['path']} ({base['sample']['n']} showers)")
    lines.append(f"{'observable':<{width}}  {'S(10 q)':>8}  {'S(unif)':>8}  {'KS':>6}"
                 + (f"  {'S(base)':>8}" if base else ""))
    for name, m in obs.items():
        line = f"{name:<{width}}  {_f(m['sep_power']):>8}  {_f(m['sep_power_uniform']):>8}  {_f(m['ks']):>6}"
        if base and name in base["sep_power"]:
            line += f"  {_f(base['sep_power'][name]):>8}" + ("" if name in base["closer"] else "  not closer")
        lines.append(line)
    lines.append(f"{'mean':<{width}}  {_f(metrics['observables']['mean_sep_power']):>8}"
                 + (f"  {'':>8}  {'':>6}  {_f(base['mean_sep_power']):>8}" if base else ""))
    response = metrics["mean_response"]
    lines.append("")
    lines.append("mean E_tot/E_inc: " + ", ".join(f"{k} {_f(v, 4)}" for k, v in response.items()))
    if base:
        lines.append(f"generated closer to the reference than the baseline on {len(base['closer'])} of "
                     f"{len(base['closer']) + len(base['not_closer'])} observables"
                     + (f" (not on {', '.join(base['not_closer'])})" if base["not_closer"] else ""))
    cls = metrics.get("classifier")
    if cls:
        lines.append("")
        lines.append(f"{'classifier':<{width}}  {'AUC':>8}  {'AUC cal':>8}  {'acc':>6}  epoch")
        for name, r in cls.items():
            lines.append(f"{name:<{width}}  {_f(r['auc']):>8}  {_f(r.get('auc_calibrated')):>8}  "
                         f"{_f(r['accuracy']):>6}  {r['best_epoch']}/{r['epochs_run']}")
    mem = metrics.get("memorisation")
    if mem:
        lines.append("")
        lines.append(f"memorisation: {mem['verdict']}")
    lines.append("")
    lines.append(f"run time {metrics['timing']['total_s']:.1f} s")
    return "\n".join(lines)


def format_markdown(metrics: dict) -> str:
    """report.md: inputs, summary, observable table (inclusive and per energy range), classifier tests,
    memorisation, timings and the plots."""
    ref, gen = metrics["reference"], metrics["generated"]
    md = ["# calosim evaluation report", "",
          f"calosim {metrics['calosim_version']}, seed {metrics['seed']}", "",
          "| sample | file | showers | particle | geometry | E_inc [GeV] |", "|---|---|---|---|---|---|"]
    samples = [("reference", ref), ("generated", gen)]
    base = metrics.get("baseline")
    if base:
        samples.append(("baseline", base["sample"]))
    for label, d in samples:
        md.append(f"| {label} | `{d['path']}` | {d['n']} | {d['particle']} | {d['geometry']} | "
                  f"{_f(d['energy_min_gev'], 1)}-{_f(d['energy_max_gev'], 1)} |")
    md += ["", "## Summary", ""]
    cls = metrics.get("classifier") or {}
    for name, r in cls.items():
        md.append(f"- classifier ({name.replace('_', ' ')}): AUC {_f(r['auc'])}"
                  + (f", calibrated {_f(r.get('auc_calibrated'))}" if "auc_calibrated" in r else ""))
    md.append(f"- mean separation power (10 equal-population bins): {_f(metrics['observables']['mean_sep_power'])}")
    md.append("- mean E_tot/E_inc: " + ", ".join(f"{k} {_f(v, 4)}" for k, v in metrics["mean_response"].items()))
    if base:
        md.append(f"- closer to the reference than the baseline on {len(base['closer'])} of "
                  f"{len(base['closer']) + len(base['not_closer'])} observables"
                  + (f" (not on {', '.join(base['not_closer'])})" if base["not_closer"] else ""))
    if metrics.get("memorisation"):
        md.append(f"- memorisation: {metrics['memorisation']['verdict']}")
    md += ["", "AUC 0.5: the classifier cannot tell the samples apart; separation power 0: identical histograms, "
           "1: disjoint.", ""]

    obs = metrics["observables"]
    md += ["## Observables (inclusive)", "",
           "S(10 q): separation power with 10 equal-population bins of the pooled sample (CaloGAN); "
           "S(unif): 50 uniform bins over the pooled range; KS: Kolmogorov-Smirnov distance.", "",
           "| observable | S(10 q) | S(unif) | KS |" + (" S(10 q) baseline |" if base else ""),
           "|---|---|---|---|" + ("---|" if base else "")]
    for name, m in obs["inclusive"].items():
        md.append(f"| {name} | {_f(m['sep_power'])} | {_f(m['sep_power_uniform'])} | {_f(m['ks'])} |"
                  + (f" {_f(base['sep_power'].get(name))} |" if base else ""))
    if obs["energy_ranges"]:
        labels = [r["label"] for r in obs["energy_ranges"]]
        md += ["", "## Separation power (10 q) per incident-energy range", "",
               "| observable | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
        md.append("| showers (ref / gen) | " + " | ".join(
            f"{next(iter(r['observables'].values()))['n_ref']} / {next(iter(r['observables'].values()))['n_gen']}"
            if r["observables"] else "-" for r in obs["energy_ranges"]) + " |")
        for name in obs["inclusive"]:
            md.append(f"| {name} | " + " | ".join(_f(r["observables"][name]["sep_power"])
                                                  for r in obs["energy_ranges"]) + " |")

    if cls:
        md += ["", "## Classifier tests", "",
               "Reference (0) vs generated (1), balanced; train / test / validation split; best epoch by test "
               "accuracy; AUC on the validation split (calibrated: isotonic fit on the test split).", "",
               "| input | features | AUC | AUC calibrated | accuracy | best epoch | train / test / val | time [s] |",
               "|---|---|---|---|---|---|---|---|"]
        for name, r in cls.items():
            md.append(f"| {name} | {r['n_features']} | {_f(r['auc'])} | {_f(r.get('auc_calibrated'))} | "
                      f"{_f(r['accuracy'])} | {r['best_epoch']} / {r['epochs_run']} | "
                      f"{r['n_train']} / {r['n_test']} / {r['n_val']} | {_f(r.get('wall_s'), 1)} |")
        rows = next(iter(cls.values())).get("per_energy_range") or []
        if rows:
            md += ["", "AUC per incident-energy range (validation split):", "",
                   "| input | " + " | ".join(r["label"] for r in rows) + " |", "|---" * (len(rows) + 1) + "|"]
            for name, r in cls.items():
                md.append(f"| {name} | " + " | ".join(_f(x["auc"]) for x in r.get("per_energy_range", [])) + " |")
        cfg = next(iter(cls.values()))["config"]
        md += ["", f"Net: Dense {' -> '.join(str(h) for h in cfg['hidden'])} -> 1 (LeakyReLU {cfg['alpha']}), "
               f"Adam lr {cfg['lr']}, batch {cfg['batch_size']}, up to {cfg['epochs']} epochs, backend "
               f"{next(iter(cls.values()))['backend']}."]

    mem = metrics.get("memorisation")
    if mem:
        md += ["", "## Memorisation", "",
               "Distance from each shower (cells / total) to its nearest training shower.", "",
               "| sample | showers | median | 5% | 95% |", "|---|---|---|---|---|",
               f"| generated | {mem['n_gen']} | {_f(mem['median_gen'], 4)} | {_f(mem['quantiles_gen'][0], 4)} | "
               f"{_f(mem['quantiles_gen'][-1], 4)} |",
               f"| held-out reference | {mem['n_ref']} | {_f(mem['median_ref'], 4)} | "
               f"{_f(mem['quantiles_ref'][0], 4)} | {_f(mem['quantiles_ref'][-1], 4)} |", "",
               f"Ratio of medians {_f(mem['ratio'])}; {100 * (mem['frac_gen_close'] or 0):.1f}% of generated "
               f"showers closer than the reference's 1% quantile; {mem['n_exact_copies']} exact copies. "
               f"**{mem['verdict']}**"]

    timing = metrics["timing"]
    md += ["", "## Timing", "", "| stage | s |", "|---|---|"]
    md += [f"| {k.removesuffix('_s')} | {_f(v, 1)} |" for k, v in timing.items()]

    plots = metrics.get("plots") or []
    if plots:
        md += ["", "## Plots", ""]
        for p in plots:
            if p.endswith("average_images.png"):
                md += ["### Average shower images", "", f"![average images]({p})", ""]
            elif p.endswith("roc.png"):
                md += ["### Classifier ROC curves (validation split)", "", f"![ROC]({p})", ""]
        obs_plots = [p for p in plots if Path(p).name.startswith("obs_")]
        if obs_plots:
            md += ["### Observables", ""]
            md += [f"![{Path(p).stem[4:]}]({p})" for p in obs_plots]
    return "\n".join(md) + "\n"
