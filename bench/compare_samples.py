"""Do two generated files of the same model and seed agree? (bench/gpu_check.sh: cupy against numba.)

    python bench/compare_samples.py A.h5 B.h5 [--json OUT.json]

Prints the separation power (10 equal-population bins) of every observable of calosim.evaluate.observables
between A and B, beside the statistical floor: the same separation between the two halves of A (two
independent samples of one distribution differ by about that much). Exit 1 if any observable's separation
exceeds three times its floor plus 0.005, or if either file holds non-finite cells.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from calosim.data.formats import read_showers
from calosim.errors import CalosimError
from calosim.evaluate.metrics import separation_power
from calosim.evaluate.observables import default_observables


def compare(path_a, path_b) -> dict:
    a, b = read_showers(path_a), read_showers(path_b)
    for name, showers in ((path_a, a), (path_b, b)):
        if not all(np.isfinite(x).all() for x in showers.layers):
            raise SystemExit(f"{name}: non-finite cells")
    obs_a, obs_b = default_observables(a), default_observables(b)
    half = len(a) // 2
    rows = {}
    for key in obs_a:
        floor = separation_power(obs_a[key][:half], obs_a[key][half:])
        rows[key] = {"separation": separation_power(obs_a[key], obs_b[key]), "floor": floor}
    max_abs = max(float(np.max(np.abs(x.astype(np.float64) - y))) for x, y in zip(a.layers, b.layers))
    return {"n": [len(a), len(b)], "max_abs_cell_difference_mev": max_abs, "observables": rows}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args(argv)
    try:
        result = compare(args.a, args.b)
    except CalosimError as exc:
        print(f"error: {exc}")
        return 2
    bad = []
    print(f"{'observable':<16} {'separation':>10} {'floor':>8}")
    for key, row in result["observables"].items():
        flag = row["separation"] > 3 * row["floor"] + 0.005
        bad += [key] if flag else []
        print(f"{key:<16} {row['separation']:>10.5f} {row['floor']:>8.5f}{'  ABOVE THE FLOOR' if flag else ''}")
    print(f"largest |cell difference|: {result['max_abs_cell_difference_mev']:.4g} MeV over {result['n']} showers")
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump({**result, "above_floor": bad}, f, indent=1)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
