"""The in-memory shower container every reader returns and every writer takes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from calosim.errors import DataError
from calosim.geometry import Geometry


@dataclass
class Showers:
    """N showers in a layered geometry.

    layers:   per layer (N, R_l, C_l) float32, deposited energy in MeV
    energy:   (N,) float32, incident energy in GeV (CaloChallenge files store MeV; readers convert)
    geometry: the per-layer shapes and cell sizes
    overflow: (N, n_layers) float32 MeV deposited outside each layer's cells, or None when unknown
    particle: "e+", "gamma", "pi+", ... ("unknown" when the file does not say)
    attrs:    free-form metadata (file attributes, JSON-able values)
    datasets: per-shower arrays (first axis N) the writers store beside the showers under their names, e.g.
              the Geant4 engine's fast-simulation records; readers do not read them back
    """

    layers: list[np.ndarray]
    energy: np.ndarray
    geometry: Geometry
    overflow: np.ndarray | None = None
    particle: str = "unknown"
    attrs: dict = field(default_factory=dict)
    datasets: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.energy.shape[0])

    def subset(self, index) -> Showers:
        """Showers at ``index`` (an int, slice, integer array or boolean mask); arrays are indexed copies or views."""
        if isinstance(index, (int, np.integer)):
            index = slice(int(index), int(index) + 1) if index != -1 else slice(-1, None)
        return Showers(
            layers=[layer[index] for layer in self.layers],
            energy=self.energy[index],
            geometry=self.geometry,
            overflow=None if self.overflow is None else self.overflow[index],
            particle=self.particle,
            attrs=dict(self.attrs),
            datasets={name: values[index] for name, values in self.datasets.items()},
        )

    def layer_energies(self) -> np.ndarray:
        """(N, n_layers) float64 MeV: the sum of each layer's cells (overflow excluded)."""
        return np.stack([layer.reshape(layer.shape[0], -1).sum(axis=1, dtype=np.float64)
                         for layer in self.layers], axis=1)

    def total_energy(self) -> np.ndarray:
        """(N,) float64 MeV: the sum of all cells of all layers (overflow excluded, as in CaloGAN's E_tot)."""
        return self.layer_energies().sum(axis=1)

    def flat(self) -> np.ndarray:
        """(N, V) float32 MeV: the layers flattened by ``geometry.flatten``."""
        return self.geometry.flatten(self.layers)


def check_showers(showers: Showers, source="showers", offset: int = 0) -> None:
    """Raise DataError (naming ``source``) for NaN / infinite / negative cells or overflow, an incident
    energy <= 0 or not finite, wrong shapes or mismatched lengths."""
    n = len(showers)
    g = showers.geometry
    if showers.energy.ndim != 1:
        raise DataError(f"{source}: energy has shape {showers.energy.shape}; expected (N,)")
    if len(showers.layers) != g.n_layers:
        raise DataError(f"{source}: {len(showers.layers)} layers for the {g.n_layers}-layer geometry {g.name!r}")
    for arr, layer in zip(showers.layers, g.layers):
        if arr.shape != (n,) + layer.shape:
            raise DataError(f"{source}: {layer.name} has shape {arr.shape}; expected ({n}, "
                            f"{layer.shape[0]}, {layer.shape[1]})")
    if showers.overflow is not None and showers.overflow.shape != (n, g.n_layers):
        raise DataError(f"{source}: overflow has shape {showers.overflow.shape}; expected ({n}, {g.n_layers})")
    arrays = [(layer.name, arr) for layer, arr in zip(g.layers, showers.layers)]
    if showers.overflow is not None:
        arrays.append(("overflow", showers.overflow))
    for name, arr in arrays:
        flat = arr.reshape(n, -1)
        bad = ~np.isfinite(flat)
        if bad.any():
            row = int(np.nonzero(bad.any(axis=1))[0][0]) + offset
            raise DataError(f"{source}: {name} holds NaN or infinite cells (first in shower {row})")
        neg = flat < 0
        if neg.any():
            row = int(np.nonzero(neg.any(axis=1))[0][0]) + offset
            raise DataError(f"{source}: {name} holds negative cells (first in shower {row}, "
                            f"min {float(flat.min()):.4g} MeV)")
    e = showers.energy
    bad = ~np.isfinite(e) | (e <= 0)
    if bad.any():
        row = int(np.nonzero(bad)[0][0])
        raise DataError(f"{source}: incident energy out of range (must be finite and > 0): {float(e[row])} GeV "
                        f"in shower {row + offset}")


def concatenate(parts: list[Showers]) -> Showers:
    """The showers of ``parts`` one after the other (same geometry); the overflow only when every part has one;
    particle and attributes of the first."""
    first = parts[0]
    overflow = None if any(p.overflow is None for p in parts) else np.concatenate([p.overflow for p in parts])
    return Showers([np.concatenate(layer) for layer in zip(*(p.layers for p in parts))],
                   np.concatenate([p.energy for p in parts]), first.geometry, overflow, first.particle, first.attrs)

