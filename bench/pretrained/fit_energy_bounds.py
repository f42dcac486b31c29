"""Give an energy-factorised model file trained before the energy model clipped its draws (calosim.models.energy:
``fit_bounds``) the clip range of its training showers, in place: /fitted/energy_v_low and energy_v_high.

    python bench/pretrained/fit_energy_bounds.py MODEL.h5 --data TRAIN.h5 --rows START STOP

The rows are the model's training rows (run.json's train_rows); nothing else in the file changes.
"""

from __future__ import annotations

import argparse

import h5py

from calosim.backends import get_backend
from calosim.data.formats import read_showers
from calosim.models.files import FITTED, load_model


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--data", required=True)
    parser.add_argument("--rows", nargs=2, type=int, required=True)
    args = parser.parse_args(argv)
    model = load_model(args.model, get_backend("numpy"))
    if model.energy_model is None:
        raise SystemExit(f"{args.model}: no energy model")
    showers = read_showers(args.data, *args.rows)
    model.energy_model.fit_bounds(showers.layer_energies(), showers.energy)
    with h5py.File(args.model, "a") as f:
        group = f.require_group(FITTED)
        for name, values in (("energy_v_low", model.energy_model.t_low), ("energy_v_high", model.energy_model.t_high)):
            if name in group:
                del group[name]
            group.create_dataset(name, data=values)
    print(f"{args.model}: clip range of the standardised energy variables {model.energy_model.t_low.round(2)} .. "
          f"{model.energy_model.t_high.round(2)}")


if __name__ == "__main__":
    main()
