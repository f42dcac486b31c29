"""The text of an evaluation: ``format_summary`` (the plain-text table ``calosim evaluate`` prints) and
``format_markdown`` (report.md), both from the metrics dict that calosim.evaluate.report writes to
metrics.json (NaN already written as None)."""

from __future__ import annotations

from pathlib import Path


def _f(v, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def format_summary(metrics: dict) -> str:
    """A short plain-text table: inputs, per observable separation power and KS, FPD / KPD, the cell-energy
    spectrum per layer, classifier AUCs, memorisation verdict and the run time."""
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
    if "response_core_width" in metrics:
        lines.append("its core width (half the 16-84% interval): " + ", ".join(
            f"{k} {_f(v, 4)}" for k, v in metrics["response_core_width"].items()))
    if base:
        lines.append(f"generated closer to the reference than the baseline on {len(base['closer'])} of "
                     f"{len(base['closer']) + len(base['not_closer'])} observables"
                     + (f" (not on {', '.join(base['not_closer'])})" if base["not_closer"] else ""))
    lines += _summary_distances(metrics)
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


def _pm(value, error, scale: float = 1e3) -> str:
    """'v +- e' in units of 1/scale (FPD and KPD are quoted x 10^3 in the field)."""
    if value is None:
        return "n/a"
    return f"{value * scale:.3f} +- {error * scale:.3f}" if error is not None else f"{value * scale:.3f}"


def _summary_distances(metrics: dict) -> list[str]:
    lines = []
    fd = metrics.get("feature_distances")
    if fd:
        lines += ["", f"FPD x 10^3: {_pm(fd['fpd'], fd['fpd_error'])}   KPD x 10^3: {_pm(fd['kpd'], fd['kpd_error'])}"
                  f"   (high-level features standardised with the reference's mean and std)"]
        base = (metrics.get("baseline") or {}).get("feature_distances")
        if base:
            lines.append(f"baseline FPD x 10^3: {_pm(base['fpd'], base['fpd_error'])}   "
                         f"KPD x 10^3: {_pm(base['kpd'], base['kpd_error'])}")
    spectrum = metrics.get("cell_spectrum")
    if spectrum:
        lines += ["", "cell-energy spectrum of the non-zero cells (quantiles reference / generated, MeV):"]
        for name, m in spectrum["layers"].items():
            qr, qg = m["quantiles_ref_mev"], m["quantiles_gen_mev"]
            lines.append(f"  {name}: S(log bins) {_f(m['sep_power'])}   1% {_f(qr['1%'], 4)} / {_f(qg['1%'], 4)}"
                         f"   50% {_f(qr['50%'], 3)} / {_f(qg['50%'], 3)}")
    return lines


def _markdown_distances(metrics: dict) -> list[str]:
    md = []
    fd = metrics.get("feature_distances")
    if fd:
        base = (metrics.get("baseline") or {}).get("feature_distances")
        md += ["", "## FPD and KPD (high-level features)", "",
               f"Frechet and kernel physics distances of jetnet / the CaloChallenge on the {len(fd['features'])} "
               f"high-level features ({', '.join(fd['features'])}): {fd['preprocessing']}. FPD: Frechet distance "
               f"averaged over {fd['fpd_batches_per_size']} batches at each batch size "
               f"{fd['fpd_batch_sizes'][0]}-{fd['fpd_batch_sizes'][-1]}, extrapolated linearly in 1/N to infinite "
               f"N (error from the fit); KPD: median of the unbiased MMD^2 with kernel {fd['kpd_kernel']} over "
               f"{fd['kpd_batches']} batches of {fd['kpd_batch_size']} (error: half the 16-84% interval). "
               "0 for identical distributions; both quoted x 10^3.", "",
               "| sample | FPD x 10^3 | KPD x 10^3 |", "|---|---|---|",
               f"| generated | {_pm(fd['fpd'], fd['fpd_error'])} | {_pm(fd['kpd'], fd['kpd_error'])} |"]
        if base:
            md.append(f"| baseline | {_pm(base['fpd'], base['fpd_error'])} | {_pm(base['kpd'], base['kpd_error'])} |")
    spectrum = metrics.get("cell_spectrum")
    if spectrum:
        md += ["", "## Cell-energy spectrum", "",
               f"Energies of the non-zero cells of all showers, per layer. S: separation power on "
               f"{spectrum['binning']}; quantiles of the non-zero cells in MeV.", "",
               "| layer | S (log bins) | non-zero cells per shower (ref / gen) | 1% ref | 1% gen | 50% ref | 50% gen |",
               "|---|---|---|---|---|---|---|"]
        for name, m in spectrum["layers"].items():
            qr, qg = m["quantiles_ref_mev"], m["quantiles_gen_mev"]
            md.append(f"| {name} | {_f(m['sep_power'])} | {_f(m['nonzero_per_shower_ref'], 1)} / "
                      f"{_f(m['nonzero_per_shower_gen'], 1)} | {_f(qr['1%'], 4)} | {_f(qg['1%'], 4)} | "
                      f"{_f(qr['50%'], 3)} | {_f(qg['50%'], 3)} |")
    return md


def format_markdown(metrics: dict) -> str:
    """report.md: inputs, summary, observable table (inclusive and per energy range), FPD / KPD, the
    cell-energy spectrum, classifier tests, memorisation, timings and the plots."""
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
    fd = metrics.get("feature_distances")
    if fd:
        md.append(f"- FPD x 10^3: {_pm(fd['fpd'], fd['fpd_error'])}, KPD x 10^3: {_pm(fd['kpd'], fd['kpd_error'])} "
                  "(high-level features standardised with the reference's mean and std)")
    if metrics.get("cell_spectrum"):
        layers = metrics["cell_spectrum"]["layers"]
        md.append(f"- cell-energy spectrum: mean separation power {_f(metrics['cell_spectrum']['mean_sep_power'])}; "
                  "1% quantile of the non-zero cells (reference / generated, MeV): " + ", ".join(
                      f"{n} {_f(m['quantiles_ref_mev']['1%'], 4)} / {_f(m['quantiles_gen_mev']['1%'], 4)}"
                      for n, m in layers.items()))
    md.append("- mean E_tot/E_inc: " + ", ".join(f"{k} {_f(v, 4)}" for k, v in metrics["mean_response"].items()))
    if "response_core_width" in metrics:
        md.append("- core width of E_tot/E_inc (half the 16-84% interval): " + ", ".join(
            f"{k} {_f(v, 4)}" for k, v in metrics["response_core_width"].items()))
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

    md += _markdown_distances(metrics)

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
            elif p.endswith("cell_spectrum.png"):
                md += ["### Cell-energy spectra (non-zero cells; dashed: 1% quantiles)", "", f"![cell spectrum]({p})",
                       ""]
            elif p.endswith("roc.png"):
                md += ["### Classifier ROC curves (validation split)", "", f"![ROC]({p})", ""]
        obs_plots = [p for p in plots if Path(p).name.startswith("obs_")]
        if obs_plots:
            md += ["### Observables", ""]
            md += [f"![{Path(p).stem[4:]}]({p})" for p in obs_plots]
    return "\n".join(md) + "\n"
