"""Measure the built-in parametric simulator (calosim.data.simulate) against a Geant4 reference file.

``compare_with_reference`` simulates one shower per reference shower, at the same incident energy, and
compares the 20 CaloGAN observables (reference section 7) with the separation power of 10 equal-population
bins (section 8), plus the means of the layer fractions, lateral widths and the response E_tot / E_inc.

Tuning used rows 0-1999 of ../shared/data/geant4/*_train.h5; the default ``start=2000`` reports on held-out
rows. Run as a script for a table:  python -m calosim.evaluate.simulator_check [DATA_DIR] [N]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from calosim.data.formats import read_showers
from calosim.data.simulate import simulate
from calosim.evaluate.metrics import separation_power
from calosim.evaluate.observables import CALOGAN_OBSERVABLES, calogan_observables

MEAN_KEYS = ("f_0", "f_1", "f_2", "sigma_0", "sigma_1", "sigma_2")


def _means(obs: dict, response: np.ndarray) -> dict[str, float]:
    out = {k: float(np.mean(obs[k])) for k in MEAN_KEYS}
    out["response"] = float(np.mean(response))
    return out


def compare_with_reference(particle: str, reference_path, n: int = 2000, seed: int = 0,
                           start: int = 2000) -> dict:
    """Simulator vs reference on reference rows [start, start + n).

    Returns {"particle", "rows": [start, stop], "n", "sep_power": {observable: S} (20 CaloGAN observables),
    "mean_sep_power", "max_sep_power", "means": {"reference": {...}, "simulated": {...}, "rel_diff": {...}}
    (f_l, sigma_l, response), "showers_per_s"}.
    """
    ref = read_showers(reference_path, start=start, stop=start + n)
    e_gev = np.asarray(ref.energy, np.float64).reshape(-1)
    t0 = time.perf_counter()
    sim = simulate(particle, e_gev, np.random.default_rng(seed))
    dt = time.perf_counter() - t0
    obs_ref = calogan_observables(ref.layers)
    obs_sim = calogan_observables(sim.layers)
    sep = {k: separation_power(obs_ref[k], obs_sim[k]) for k in CALOGAN_OBSERVABLES}
    m_ref = _means(obs_ref, obs_ref["E_tot"] / (1000.0 * e_gev))
    m_sim = _means(obs_sim, obs_sim["E_tot"] / (1000.0 * e_gev))
    rel = {k: (m_sim[k] - m_ref[k]) / m_ref[k] if m_ref[k] else float("nan") for k in m_ref}
    return {
        "particle": particle, "rows": [start, start + len(ref)], "n": len(ref),
        "sep_power": sep, "mean_sep_power": float(np.mean(list(sep.values()))),
        "max_sep_power": float(np.max(list(sep.values()))),
        "means": {"reference": m_ref, "simulated": m_sim, "rel_diff": rel},
        "showers_per_s": len(ref) / dt if dt > 0 else float("inf"),
    }


def format_report(results: list[dict]) -> str:
    """A plain-text table of several ``compare_with_reference`` results (one column per particle)."""
    names = [r["particle"] for r in results]
    lines = ["separation power (10 quantile bins)", f"{'observable':<14}" + "".join(f"{n:>10}" for n in names)]
    for k in CALOGAN_OBSERVABLES:
        lines.append(f"{k:<14}" + "".join(f"{r['sep_power'][k]:>10.3f}" for r in results))
    lines.append(f"{'mean':<14}" + "".join(f"{r['mean_sep_power']:>10.3f}" for r in results))
    lines.append("")
    lines.append("means: reference / simulated (relative difference)")
    for k in (*MEAN_KEYS, "response"):
        cells = []
        for r in results:
            m = r["means"]
            cells.append(f"{m['reference'][k]:8.3f} /{m['simulated'][k]:8.3f} ({m['rel_diff'][k]:+6.1%})")
        lines.append(f"{k:<10}" + "   ".join(cells))
    lines.append("showers/s: " + ", ".join(f"{r['particle']} {r['showers_per_s']:.0f}" for r in results))
    return "\n".join(lines)


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        raise SystemExit("usage: python -m calosim.evaluate.simulator_check GEANT4_DIR [N] [START]\n"
                         "GEANT4_DIR holds eplus_train.h5, gamma_train.h5 and piplus_train.h5 (CaloGAN format)")
    data_dir = Path(argv[0])
    n = int(argv[1]) if len(argv) > 1 else 2000
    start = int(argv[2]) if len(argv) > 2 else 2000
    results = [compare_with_reference(p, data_dir / f"{p}_train.h5", n=n, seed=0, start=start)
               for p in ("eplus", "gamma", "piplus")]
    print(format_report(results))


if __name__ == "__main__":
    main()
