"""How much the link between a layer's energy and its shape tells Geant4 showers apart: the low-level classifier
(the bar's convention, cells / E_inc) on showers ROWS..2*ROWS of a file against rows 0..ROWS, once as they are and
once with each shower's layers rescaled to the layer energies (fractions of E_inc) of its neighbour in incident
energy, per layer and for all layers.

    python bench/pretrained/energy_link.py DATA.h5 [--showers 5000] [--backend numba]
"""

from __future__ import annotations

import argparse

import numpy as np

from calosim.data.formats import read_showers
from calosim.evaluate.classifier import classifier_test, low_level_features


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--showers", type=int, default=5000)
    parser.add_argument("--backend", default="numba")
    args = parser.parse_args(argv)
    n = args.showers
    showers = read_showers(args.data, 0, 2 * n)
    energy = np.asarray(showers.energy, np.float64)
    reference = [np.asarray(x[:n], np.float64) for x in showers.layers]
    other = [np.asarray(x[n:], np.float64) for x in showers.layers]
    e_ref, e_other = energy[:n], energy[n:]
    order = np.argsort(e_other)
    neighbour = np.empty(n, int)
    neighbour[order] = np.roll(order, 1)
    fractions = np.stack([x.sum(axis=(1, 2)) for x in other], axis=1) / e_other[:, None]
    target = fractions[neighbour] * e_other[:, None]
    swapped = [x * (target[:, i] / np.maximum(x.sum(axis=(1, 2)), 1e-12))[:, None, None] for i, x in enumerate(other)]

    def auc(a, b):
        return classifier_test(low_level_features(a, e_ref), low_level_features(b, e_other), backend=args.backend,
                               seed=0, standardise=False)["auc"]

    for name, layers in (("as they are", other), ("neighbour's layer energies", swapped)):
        per_layer = [auc([reference[i]], [layers[i]]) for i in range(len(layers))]
        print(f"{name}: per layer {' '.join(f'{a:.3f}' for a in per_layer)}, all layers {auc(reference, layers):.3f}",
              flush=True)


if __name__ == "__main__":
    main()
