"""Shower samples shipped inside the package, so that calosim runs on a fresh machine with no download.

eplus: eplus_geant4_4k.h5 -- rows 0..3999 (the first 4000) of the Geant4 file geant4/eplus_train.h5
       (10000 e+, uniform 1-100 GeV, CaloGAN geometry), for training.
eplus-test: eplus_geant4_test2k.h5 -- rows 4000..5999 of the same file, never used for training: the
       held-out reference that the quickstart evaluates generated showers against.
Rows 6000..9999 were not bundled. float32, gzip; the source file's attributes are kept and ``source``,
``source_rows`` and ``held_out_rows`` say where each sample came from.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from calosim.errors import DataError

BUNDLED = {
    "eplus": {
        "file": "eplus_geant4_4k.h5",
        "particle": "e+",
        "description": "4000 Geant4 e+ showers, 1-100 GeV, CaloGAN geometry (rows 0-3999 of geant4/eplus_train.h5)",
    },
    "eplus-test": {
        "file": "eplus_geant4_test2k.h5",
        "particle": "e+",
        "description": "2000 held-out Geant4 e+ showers for evaluation (rows 4000-5999 of geant4/eplus_train.h5)",
    },
}
SOURCE_ROWS = range(0, 4000)
HELD_OUT_ROWS = range(4000, 10000)  # of geant4/eplus_train.h5: never trained on, use them for evaluation
TEST_ROWS = range(4000, 6000)  # the bundled held-out sample


def bundled_path(name: str = "eplus") -> Path:
    """Path of a bundled sample (see BUNDLED); DataError if the name is unknown or the file is missing."""
    if name not in BUNDLED:
        raise DataError(f"no bundled sample {name!r}; available: {', '.join(BUNDLED)}")
    path = Path(str(resources.files("calosim.data") / "bundled" / BUNDLED[name]["file"]))
    if not path.is_file():
        raise DataError(f"{path}: bundled sample {name!r} is missing from this installation")
    return path


def list_bundled() -> list[dict]:
    """One dict per bundled sample: name, file, particle, description, path (None if missing)."""
    out = []
    for name, info in BUNDLED.items():
        try:
            path = bundled_path(name)
        except DataError:
            path = None
        out.append({"name": name, **info, "path": path})
    return out


def build_bundled(source, dest, rows: range = SOURCE_ROWS, held_out: range = HELD_OUT_ROWS) -> Path:
    """Copy ``rows`` of the Geant4 file ``source`` to ``dest`` (how eplus_geant4_4k.h5 was made)."""
    from calosim.data.formats import read_showers, write_showers

    showers = read_showers(source, rows.start, rows.stop)
    return write_showers(dest, showers, source=str(Path(source).name), source_rows=f"{rows.start}-{rows.stop - 1}",
                         held_out_rows=f"{held_out.start}-{held_out.stop - 1} of {Path(source).name}",
                         n_events=len(showers), seed=showers.attrs.get("seed", "unknown"),
                         producer="calosim.data.bundled.build_bundled (a slice of a Geant4 file)")
