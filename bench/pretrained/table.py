"""The quality table of the pretrained models: one row per trial directory (bench/pretrained/trial.py), grouped as
given, in markdown.

    python bench/pretrained/table.py DIR [DIR ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

COLUMNS = ("trial", "n ref / gen", "AUC low", "AUC high", "FPD", "KPD", "mean sep", "worst sep", "> 0.05",
           "response (Geant4)", "core (Geant4)")


def row(trial: Path) -> list[str]:
    s = json.loads((trial / "summary.json").read_text())
    return [trial.name, f"{s['n_reference']} / {s['n_generated']}", f"{s['auc_low']:.3f}", f"{s['auc_high']:.3f}",
            f"{s['fpd']:.3f}", f"{s['kpd']:.4f}", f"{s['mean_sep']:.4f}", f"{s['worst']} {s['worst_sep']:.3f}",
            str(len(s["above_0.05"])), f"{s['response_gen']:.4f} ({s['response_ref']:.4f})",
            f"{s['core_gen']:.4f} ({s['core_ref']:.4f})"]


def main(argv=None) -> None:
    trials = [Path(p) for p in (argv if argv is not None else sys.argv[1:])]
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for trial in trials:
        print("| " + " | ".join(row(trial)) + " |")


if __name__ == "__main__":
    main()
