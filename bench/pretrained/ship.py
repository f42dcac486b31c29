"""Ship a trained model in the package: copy its model file to calosim/pretrained/NAME.h5 and write its entry in
calosim/pretrained/catalogue.json (recipe, training data, quality on held-out Geant4 showers, machine, commit).

    python bench/pretrained/ship.py --name eplus --trial DIR [--seed-trials DIR ...] --reference-desc TEXT

DIR is a bench/pretrained/trial.py directory whose run was trained on a splits.py training file and evaluated
against the held-out file; --seed-trials are the same recipe with other seeds, evaluated the same way, whose
figures go in the entry as the recipe's spread.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

from calosim.info import machine_info
from calosim.models import energy_map, spectrum_tail, spread
from calosim.models.calibration import FITTED_KEY, RESPONSE_KEY
from calosim.models.files import read_model_header

PACKAGE = Path(__file__).resolve().parents[2] / "calosim" / "pretrained"
CALIBRATION_KEYS = (FITTED_KEY, RESPONSE_KEY, *spread.KEYS, spectrum_tail.KEY, *energy_map.KEYS)
SPREAD_KEYS = ("auc_low", "auc_high", "fpd", "kpd", "mean_sep", "worst_sep", "worst", "response_gen", "core_gen")


def machine() -> str:
    info = machine_info()
    return f"{info['cpu']}, {info['cpu_count']} cores, Python {info['python']}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--trial", type=Path, required=True)
    parser.add_argument("--seed-trials", type=Path, nargs="*", default=[])
    parser.add_argument("--reference-desc", required=True, help="what the held-out reference is")
    parser.add_argument("--training-desc", required=True, help="what the training file holds")
    args = parser.parse_args(argv)
    run_dir = args.trial / "run"
    run = json.loads((run_dir / "run.json").read_text())
    model_file = run_dir / "best.h5"
    summary = json.loads((args.trial / "summary.json").read_text())
    target = PACKAGE / f"{args.name}.h5"
    shutil.copyfile(model_file, target)
    data = target.read_bytes()
    header = read_model_header(target)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=PACKAGE).stdout.strip()
    seeds = {str(run.get("seed")): {k: summary[k] for k in SPREAD_KEYS}}
    for trial in args.seed_trials:
        other = json.loads((trial / "summary.json").read_text())
        seeds[str(json.loads((trial / "run" / "run.json").read_text()).get("seed"))] = {
            k: other[k] for k in SPREAD_KEYS}
    entry = {
        "file": target.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size_bytes": len(data),
        "particle": run["particle"],
        "energy_range_gev": run["energy_range"],
        "recipe": {"model_type": run["model_type"], "config": run["config"]["name"],
                   "energy_model": run.get("energy_model") is not None, "seed": run["seed"],
                   "epochs": run["config"]["training"]["epochs"], "kept": "the best epoch by validation score",
                   "full_config": run["config"], "energy_model_config": run.get("energy_model"),
                   "sampling_mirror_axes": list(header["sampling_mirror_axes"]),
                   "calibration": sorted(k for k in header["fitted"] if k in CALIBRATION_KEYS)},
        "training_data": {"showers": run["train_rows"][1] - run["train_rows"][0],
                          "validation_showers": run["validation_rows"][1] - run["validation_rows"][0],
                          "description": args.training_desc, "sha256": run["data_sha256"]},
        "quality": {**summary, "reference": args.reference_desc, "seeds": seeds},
        "measured_on": machine(),
        "calosim_commit": commit,
    }
    catalogue_path = PACKAGE / "catalogue.json"
    entries = json.loads(catalogue_path.read_text()) if catalogue_path.is_file() else {}
    entries[args.name] = entry
    catalogue_path.write_text(json.dumps(entries, indent=1) + "\n")
    print(f"shipped {args.name}: {target} ({len(data) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
