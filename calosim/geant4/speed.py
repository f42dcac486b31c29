"""Geant4 timing for ``calosim bench --vs-geant4``: ms per shower at fixed incident energies."""

from __future__ import annotations

import numpy as np

from calosim.geant4.engine import run_showers
from calosim.geant4.fastsim import FastSimSettings


def time_geant4(particle: str, energies_gev, n_per_energy: int, seed: int = 0, *, approximate_data: bool = True,
                warmup: int = 2, details: bool = False, fastsim: FastSimSettings | None = None) -> dict:
    """Mean wall time per shower in ms for each energy: {energy_gev: ms}.

    One worker process, one core: Geant4 tracking plus the compiled CaloGAN readout, timed per shower from
    the start to the end of the event (detector construction, physics tables and ``warmup`` showers at the
    first energy excluded). Shower i uses Geant4 seed i of default_rng(seed). ``approximate_data`` uses the
    installed data sets when they are found and the stand-in tables otherwise. With ``details`` each value is
    a dict: ms (mean), median_ms, std_ms, n, sum_over_e (mean sum of the cells / incident energy), and with
    ``fastsim`` (its model takes over e+, e-, gamma entering the calorimeter; the time per event includes
    sampling its shower) fastsim_fraction (share of the events with a fast-simulated particle).
    """
    energies = [float(e) for e in energies_gev]
    if not energies or n_per_energy < 1:
        raise ValueError("need at least one energy and n_per_energy >= 1")
    per = np.repeat(energies, n_per_energy)
    run = np.concatenate([np.full(warmup, energies[0]), per])
    seeds = np.random.default_rng(seed).integers(1, 2**62, size=len(run))
    cells, seconds, info = run_showers(particle, run, seeds, workers=1, approximate_data=approximate_data,
                                       chunk_size=len(run), fastsim=fastsim)
    cells, seconds = cells[warmup:], seconds[warmup:]
    fast = info["fastsim"]["fastsim_count"][warmup:] > 0 if fastsim is not None else None
    n_layers = 3
    out = {}
    for e in energies:
        m = per == e
        ms = 1e3 * seconds[m]
        if details:
            total = cells[m, :-n_layers].sum(axis=1, dtype=np.float64) / (1e3 * e)
            out[e] = {"ms": float(ms.mean()), "median_ms": float(np.median(ms)), "std_ms": float(ms.std()),
                      "n": int(m.sum()), "sum_over_e": float(total.mean())}
            if fast is not None:
                out[e]["fastsim_fraction"] = float(fast[m].mean())
        else:
            out[e] = float(ms.mean())
    return out
