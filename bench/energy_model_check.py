"""How well does the layer-energy model of the energy factorisation (calosim.models.energy) reproduce Geant4's
layer energies and response, on showers it never saw?

    python bench/energy_model_check.py --train A.h5 [B.h5 ...] --held-out C.h5 --rows START STOP [--steps 3000]

Trains on every row of the training files (numba backend, float32), then samples one set of layer energies per
held-out shower at its incident energy and prints, inclusive and per incident-energy range: the response
E_tot / E_in (mean, core width = half the 16-84% interval, 1% and 99% quantiles) of Geant4 and of the model,
and the separation powers (10 equal-population bins) of E_0 .. E_{L-1}, E_tot, the fractions f_l and the
response. A minute or two on 2 cores.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from calosim.backends import get_backend
from calosim.data.formats import read_showers
from calosim.evaluate.metrics import response_core_width as core_width
from calosim.evaluate.metrics import separation_power
from calosim.models.energy import LayerEnergyConfig, LayerEnergyModel, LayerEnergyTrainer

RANGES = ((1.0, 10.0), (10.0, 50.0), (50.0, 100.0))


def observables(sums_mev, energy_gev) -> dict:
    e_tot = sums_mev.sum(axis=1)
    out = {f"E_{i}": sums_mev[:, i] for i in range(sums_mev.shape[1])}
    out["E_tot"] = e_tot
    out.update({f"f_{i}": sums_mev[:, i] / np.maximum(e_tot, 1e-6) for i in range(sums_mev.shape[1])})
    out["response"] = e_tot / (1000.0 * energy_gev)
    return out


def report(ref: dict, gen: dict, label: str) -> None:
    r, g = ref["response"], gen["response"]
    print(f"{label}: {len(r)} showers; response Geant4 mean {r.mean():.4f} core {core_width(r):.4f} "
          f"[1%, 99%] [{np.percentile(r, 1):.3f}, {np.percentile(r, 99):.3f}]; model mean {g.mean():.4f} "
          f"core {core_width(g):.4f} [{np.percentile(g, 1):.3f}, {np.percentile(g, 99):.3f}]")
    seps = {k: separation_power(ref[k], gen[k]) for k in ref}
    print("    separation: " + ", ".join(f"{k} {v:.4f}" for k, v in seps.items()))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", nargs="+", required=True)
    parser.add_argument("--held-out", required=True)
    parser.add_argument("--rows", nargs=2, type=int, required=True)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--lr", type=float, default=LayerEnergyConfig.lr)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sums, energy = [], []
    for path in args.train:
        showers = read_showers(path)
        sums.append(showers.layer_energies())
        energy.append(np.asarray(showers.energy, np.float64))
    sums, energy = np.concatenate(sums), np.concatenate(energy)
    held = read_showers(args.held_out, *args.rows)
    rng = np.random.default_rng(args.seed)
    energy_range = (float(np.floor(energy.min())), float(np.ceil(energy.max())))
    model = LayerEnergyModel.build(LayerEnergyConfig(hidden=64, components=8, lr=args.lr), sums.shape[1],
                                   get_backend("numba"), rng, energy_range)
    model.fit_scales(sums, energy)
    trainer = LayerEnergyTrainer(model)
    started = time.perf_counter()
    for step in range(args.steps):
        rows = rng.integers(0, len(energy), args.batch)
        loss = trainer.train_step(sums[rows], energy[rows])["e_nll"]
        if (step + 1) % 1000 == 0:
            print(f"step {step + 1}: e_nll {loss:.4f} ({time.perf_counter() - started:.0f} s)")
    held_energy = np.asarray(held.energy, np.float64)
    ref = observables(held.layer_energies(), held_energy)
    gen = observables(model.sample(held_energy, np.random.default_rng(args.seed + 1)), held_energy)
    print(f"trained on {len(energy)} showers of {', '.join(args.train)}; held out: rows {args.rows} of "
          f"{args.held_out}")
    report(ref, gen, "all")
    for lo, hi in RANGES:
        keep = (held_energy >= lo) & (held_energy < hi)
        report({k: v[keep] for k, v in ref.items()}, {k: v[keep] for k, v in gen.items()}, f"{lo:g}-{hi:g} GeV")


if __name__ == "__main__":
    main()
