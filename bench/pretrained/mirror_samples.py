"""Give a model file trained before models reflected their samples (ShowerModel.sampling_mirror_axes) the axes its
geometry is mirror symmetric under, in place: the attribute sampling_mirror_axes.

    python bench/pretrained/mirror_samples.py MODEL.h5 [MODEL.h5 ...]

Nothing else in the file changes; generation then reflects every shower at random along those axes.
"""

from __future__ import annotations

import argparse
import json

import h5py

from calosim.models.files import read_model_header


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    args = parser.parse_args(argv)
    for path in args.models:
        axes = read_model_header(path)["geometry"].mirror_axes()
        if not axes:
            raise SystemExit(f"{path}: the geometry has no mirror symmetry")
        with h5py.File(path, "a") as f:
            f.attrs["sampling_mirror_axes"] = json.dumps(list(axes))
        print(f"{path}: sampling_mirror_axes {list(axes)}")


if __name__ == "__main__":
    main()
