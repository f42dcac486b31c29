"""Are the showers a model deposits inside Geant4 (``calosim simulate --engine geant4 --fastsim MODEL``) the
model's showers? Compares them with the same model's standalone generation at the same incident energies.

    python bench/fastsim_check.py --model RUN_OR_FILE --out DIR [-n 200] [--seed 11]

Writes DIR/fastsim.h5 (Geant4 e+, stand-in data tables, the model as its fast simulation), then two independent
``calosim generate`` samples at that file's energies (DIR/generate_1.h5, generate_2.h5, numpy backend, seeds 1
and 2), and prints the separation power (10 equal-population bins) of the 20 CaloGAN observables for fast
simulation vs generate_1 and, as the statistical floor of N showers a side, generate_1 vs generate_2.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

from calosim.data.formats import read_showers
from calosim.evaluate.metrics import separation_power
from calosim.evaluate.observables import CALOGAN_OBSERVABLES, calogan_observables


def run(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "calosim", *args], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("-n", type=int, default=200)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    fastsim = args.out / "fastsim.h5"
    run("simulate", "--engine", "geant4", "--approximate-data", "--particle", "eplus", "-n", str(args.n),
        "--seed", str(args.seed), "--fastsim", args.model, "-o", str(fastsim), "--force")
    generated = []
    for seed in (1, 2):
        path = args.out / f"generate_{seed}.h5"
        run("generate", "--model", args.model, "--energies-from", str(fastsim), "--backend", "numpy",
            "--seed", str(seed), "-o", str(path), "--force")
        generated.append(path)

    samples = [read_showers(p) for p in (fastsim, *generated)]
    flagged = samples[0].attrs["fastsim_showers"]
    print(f"{args.n} e+ showers, {flagged} fast-simulated; energies from {fastsim}")
    obs = [calogan_observables(s.layers) for s in samples]
    print(f"{'observable':>14}  {'fastsim vs gen_1':>16}  {'gen_2 vs gen_1 (floor)':>22}")
    rows = []
    for name in CALOGAN_OBSERVABLES:
        a, b = separation_power(obs[1][name], obs[0][name]), separation_power(obs[1][name], obs[2][name])
        rows.append((a, b))
        print(f"{name:>14}  {a:>16.4f}  {b:>22.4f}")
    a, b = np.array(rows).T
    print(f"{'mean':>14}  {a.mean():>16.4f}  {b.mean():>22.4f}")
    print(f"{'max':>14}  {a.max():>16.4f}  {b.max():>22.4f}")


if __name__ == "__main__":
    main()
