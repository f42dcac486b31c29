"""The data splits of the shipped pretrained models (calosim/pretrained/): every Geant4 shower of
../shared/data/geant4 except a held-out part, merged into one training file per particle, and the held-out part.

    python bench/pretrained/splits.py --geant4 ../shared/data/geant4 --out DIR

The held-out rows are the same as the energy model's checks (bench/energy_model_check.py): the last 5000 of
eplus_extra2.h5 / gamma_extra2.h5 and the last 3000 of piplus_extra.h5. The training file's last rows (the part
`calosim train --validation-fraction` scores after every epoch) come from the same file as the held-out rows,
just before them, so validation and held-out are separate.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from calosim.data.formats import read_showers, write_showers
from calosim.data.showers import concatenate

SPLITS = {  # particle: (training files in order, held-out file, first held-out row)
    "eplus": (["eplus_train.h5", "eplus_extra.h5", "eplus_extra2.h5"], "eplus_extra2.h5", 5000),
    "gamma": (["gamma_train.h5", "gamma_extra.h5", "gamma_extra2.h5"], "gamma_extra2.h5", 5000),
    "piplus": (["piplus_train.h5", "piplus_extra.h5"], "piplus_extra.h5", 3000),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--geant4", type=Path, default=Path("../shared/data/geant4"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for particle, (files, held_file, first_held) in SPLITS.items():
        parts, sources = [], []
        for name in files:
            stop = first_held if name == held_file else None
            parts.append(read_showers(args.geant4 / name, 0, stop))
            sources.append(f"{name}[0:{stop if stop is not None else len(parts[-1])}]")
        train = dataclasses.replace(concatenate(parts), attrs={})  # the merged file says its sources itself
        held = read_showers(args.geant4 / held_file, first_held)
        write_showers(args.out / f"{particle}_train.h5", train, source=" + ".join(sources))
        write_showers(args.out / f"{particle}_heldout.h5", held, source=f"{held_file}[{first_held}:]")
        print(f"{particle}: {len(train)} training ({' + '.join(sources)}), {len(held)} held out "
              f"({held_file}[{first_held}:])")


if __name__ == "__main__":
    main()
