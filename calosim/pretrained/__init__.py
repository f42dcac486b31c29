"""Pretrained models shipped inside the package, loaded by name (``calosim generate --model eplus``).

catalogue.json lists each model: its file (beside this module), particle, the recipe it was trained with, the
Geant4 showers it was trained on, and its quality measured against Geant4 showers it never saw (AUC, FPD, KPD,
separation powers, response), with the machine and calosim commit that measured it. bench/pretrained/ship.py
writes an entry from a finished training run and its evaluation; ``calosim models list`` prints them.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from calosim.errors import DataError

CATALOGUE = "catalogue.json"


def catalogue() -> dict[str, dict]:
    """name -> entry (see the module docstring); empty when no model is shipped."""
    path = resources.files(__name__) / CATALOGUE
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def pretrained_path(name: str) -> Path:
    """The model file of the shipped model ``name``; DataError (listing the names) when there is none."""
    entries = catalogue()
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none"
        raise DataError(f"{name}: no such model file, run directory or pretrained model (pretrained: {known})")
    path = Path(str(resources.files(__name__) / entries[name]["file"]))
    if not path.is_file():
        raise DataError(f"pretrained model {name!r}: its file {path.name} is missing from the installed package")
    return path


def format_catalogue(entries: dict[str, dict]) -> str:
    """The table of ``calosim models list``: one line per model, its spread over the recipe's seeds, and where
    each was measured."""
    if not entries:
        return "no pretrained models are shipped in this installation"
    lines = [f"{'name':8s} {'particle':8s} {'recipe':26s} {'trained on':20s} {'AUC low':>7s} {'FPD':>6s} "
             f"{'mean sep':>8s} {'worst sep':>18s}  {'response (Geant4)':s}"]
    for name in sorted(entries):
        e = entries[name]
        q, r, t = e["quality"], e["recipe"], e["training_data"]
        recipe = f"{r['model_type']} {r['config']}" + (" + energy model" if r.get("energy_model") else "")
        trained = f"{t['showers']} Geant4 {e['particle']}"
        worst = f"{q['worst']} {q['worst_sep']:.3f}"
        lines.append(f"{name:8s} {e['particle']:8s} {recipe:26s} {trained:20s} {q['auc_low']:7.3f} {q['fpd']:6.3f} "
                     f"{q['mean_sep']:8.4f} {worst:>18s}  {q['response_gen']:.4f} ({q['response_ref']:.4f})")
    lines.append("")
    for name in sorted(entries):
        e = entries[name]
        q = e["quality"]
        seeds = q.get("seeds", {})
        spread = "; ".join(f"seed {seed}: AUC {v['auc_low']:.3f}, mean sep {v['mean_sep']:.4f}, worst "
                           f"{v['worst']} {v['worst_sep']:.3f}" for seed, v in sorted(seeds.items()))
        axes = e["recipe"].get("sampling_mirror_axes")
        mirrored = f", its showers reflected at random along axes {axes} (mirrored sampling)" if axes else ""
        calibrated = e["recipe"].get("calibration")
        mirrored += f", calibrated ({', '.join(calibrated)})" if calibrated else ""
        lines.append(f"{name}: shipped seed {e['recipe']['seed']}{mirrored}, measured against {q['reference']} "
                     f"({q['n_reference']} Geant4 showers never trained on, {q['n_generated']} generated at their "
                     f"energies) on {e['measured_on']}. The recipe on every seed: {spread}")
    lines.append("`calosim models show NAME` prints all of an entry")
    return "\n".join(lines)
