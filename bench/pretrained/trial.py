"""Train one recipe, generate at a reference's incident energies and evaluate against it: one summary line.

    python bench/pretrained/trial.py --data TRAIN.h5 --reference REF.h5 --out DIR [--model-type vae]
        [--config small] [--config-file F] [--epochs N] [--seed S] [--energy-model] [--mirror]
        [--validation-fraction F]

Used to choose the recipe of the shipped models on a validation file, and then to measure the shipped models
once on the held-out file (bench/pretrained/splits.py). DIR holds run/, generated.h5, report/ and summary.json.
A run already in DIR/run is resumed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from calosim.evaluate.report import evaluate
from calosim.sampling import generate
from calosim.training import train


def summarise(metrics: dict) -> dict:
    """The quality figures of the issue's tables, from calosim evaluate's metrics.json."""
    seps = {name: m["sep_power"] for name, m in metrics["observables"]["inclusive"].items()}
    worst = max(seps, key=seps.get)
    classifier = metrics.get("classifier", {})
    return {
        "n_reference": metrics["reference"]["n"], "n_generated": metrics["generated"]["n"],
        "auc_low": classifier.get("low_level", {}).get("auc"), "auc_high": classifier.get("high_level", {}).get("auc"),
        "fpd": metrics["feature_distances"]["fpd"], "kpd": metrics["feature_distances"]["kpd"],
        "mean_sep": metrics["observables"]["mean_sep_power"], "worst_sep": seps[worst], "worst": worst,
        "above_0.05": sorted(n for n, v in seps.items() if v > 0.05),
        "response_ref": metrics["mean_response"]["reference"], "response_gen": metrics["mean_response"]["generated"],
        "core_ref": metrics["response_core_width"]["reference"],
        "core_gen": metrics["response_core_width"]["generated"],
    }


def format_line(label: str, s: dict) -> str:
    return (f"{label}: AUC low {s['auc_low']:.3f} high {s['auc_high']:.3f}, FPD {s['fpd']:.3g}, KPD {s['kpd']:.2g}, "
            f"mean sep {s['mean_sep']:.4f}, worst {s['worst']} {s['worst_sep']:.3f}, "
            f"{len(s['above_0.05'])} above 0.05; response {s['response_gen']:.4f} vs {s['response_ref']:.4f}, "
            f"core {s['core_gen']:.4f} vs {s['core_ref']:.4f} (n {s['n_generated']} / {s['n_reference']})")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--reference", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model-type", default="vae")
    parser.add_argument("--config", default="small")
    parser.add_argument("--config-file", default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--energy-model", action="store_true")
    parser.add_argument("--mirror", action="store_true")
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    parser.add_argument("--backend", default="numba")
    parser.add_argument("--evaluate-only", action="store_true", help="generate and evaluate DIR/run as it is")
    args = parser.parse_args(argv)
    run_dir = args.out / "run"
    if not args.evaluate_only:
        train(run_dir, data=args.data, backend=args.backend, config=args.config, config_file=args.config_file,
              epochs=args.epochs, seed=args.seed, model_type=args.model_type, energy_model=args.energy_model,
              validation_fraction=args.validation_fraction, mirror=args.mirror,
              resume=(run_dir / "checkpoint.h5").exists())
    generated = args.out / "generated.h5"
    generated.unlink(missing_ok=True)
    generate(run_dir, generated, backend=args.backend, energies_from=args.reference, seed=args.seed + 1)
    metrics = evaluate(args.reference, generated, args.out / "report", seed=args.seed)
    summary = summarise(metrics)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(format_line(str(args.out), summary), flush=True)


if __name__ == "__main__":
    main()
