"""The validation score of a training run, computed after every epoch on the held-out rows of the file.

The generator (inference mode) makes one shower per validation shower, at its incident energy and with the
same latent vectors every epoch (calosim.models.base.ShowerModel.sample), and the score is the sum of the
separation powers (10 equal-population bins) of the observables of :func:`validation_observables` (in the
CaloGAN geometry: the paper's 20 and E_tot/E_in), plus 6 |<E_tot/E_in>_gen / <E_tot/E_in>_val - 1|
(RESPONSE_WEIGHT: the mean response must be within a few percent, so a 1% miss weighs as much as 0.06 of
separation power). Lower is better.
"""

from __future__ import annotations

import numpy as np

from calosim.evaluate.metrics import separation_power
from calosim.evaluate.observables import calogan_observables, is_calogan
from calosim.models.units import layer_sums


def validation_observables(layers_mev, energy_gev, geometry) -> dict[str, np.ndarray]:
    """Per-shower observables the validation score compares: the response E_tot/E_in and, in the CaloGAN
    geometry, the paper's 20 shower shapes (calosim.evaluate.observables.calogan_observables); in any other
    geometry the layer fractions f_l = E_l / E_tot and sparsities (fraction of cells > 0)."""
    n = len(energy_gev)
    e = layer_sums(layers_mev, n)  # MeV
    e_tot = e.sum(axis=1)
    out = {"response": e_tot / (1000.0 * np.asarray(energy_gev, np.float64))}
    if is_calogan(geometry):
        out.update(calogan_observables(layers_mev))
        return out
    for i in range(e.shape[1]):
        out[f"f_{i}"] = e[:, i] / (e_tot + 1e-6)
        out[f"sparsity_{i}"] = (np.asarray(layers_mev[i]).reshape(n, -1) > 0).mean(axis=1)
    return out


RESPONSE_WEIGHT = 6.0  # of |<E_tot/E_in>_gen / <E_tot/E_in>_val - 1| in the validation score


def validation_score(gen: dict[str, np.ndarray], ref: dict[str, np.ndarray],
                     response_weight: float = RESPONSE_WEIGHT) -> dict[str, float]:
    """{"score": ..., "response_gen", "response_ref", "sep_<name>" ...} (see the module docstring)."""
    out = {"response_gen": float(gen["response"].mean()), "response_ref": float(ref["response"].mean())}
    score = response_weight * abs(out["response_gen"] / out["response_ref"] - 1.0)
    for name in ref:
        sep = separation_power(ref[name], gen[name])
        out[f"sep_{name}"] = sep
        score += sep
    out["score"] = float(score)
    return out


def sample_arrays(model, energy_gev: np.ndarray, rng: np.random.Generator, batch_size: int = 1000) -> list:
    """Showers of ``model`` for the given incident energies (GeV), through its sampling path in batches:
    per-layer (N, R, C) float32 MeV NumPy arrays."""
    be = model.backend
    parts = []
    for start in range(0, len(energy_gev), batch_size):
        layers = model.sample(energy_gev[start:start + batch_size], rng)
        parts.append([be.to_numpy(x).astype(np.float32) for x in layers])
    return [np.concatenate([p[i] for p in parts]) for i in range(len(model.geometry.layers))]
