"""Finding Geant4's data sets, or building calosim's stand-ins for them (``--approximate-data``).

geant4-pybind checks for the data sets when it is imported and, unless GEANT4_DATA_DIR is set, asks to
download them (or, with CI=true, downloads them without asking; offline that ends in ``ImportError:
initialization failed``). calosim therefore resolves every data set itself, sets GEANT4_DATA_DIR and the G4*DATA
variables, and only then imports geant4_pybind (in its worker processes, never in the calling process).

Where each data set is looked for, first hit wins:
  1. its own variable (G4LEDATA, G4PARTICLEXSDATA, ...) when it names a folder;
  2. $GEANT4_DATA_DIR/<name><version>, else the newest $GEANT4_DATA_DIR/<name>* folder;
  3. ~/.geant4_pybind/<name><version> (where geant4-pybind puts the data sets it downloads);
  4. the folders ``geant4-config --datasets`` names (a native Geant4 installation).
The data sets the physics list needs (REQUIRED) must be found, or calosim stops with one line saying how to
install them; the others are not read by calosim's physics list and point to empty folders when missing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from calosim.errors import CalosimError

# name -> (variable, version shipped with Geant4 11.4 / geant4-pybind 0.1.3)
DATASETS = {
    "G4NDL": ("G4NEUTRONHPDATA", "4.7.1"),
    "G4EMLOW": ("G4LEDATA", "8.8"),
    "PhotonEvaporation": ("G4LEVELGAMMADATA", "6.1.2"),
    "RadioactiveDecay": ("G4RADIOACTIVEDATA", "6.1.2"),
    "G4PARTICLEXS": ("G4PARTICLEXSDATA", "4.2"),
    "G4PII": ("G4PIIDATA", "1.3"),
    "RealSurface": ("G4REALSURFACEDATA", "2.2"),
    "G4SAIDDATA": ("G4SAIDXSDATA", "2.0"),
    "G4ABLA": ("G4ABLADATA", "3.3"),
    "G4INCL": ("G4INCLDATA", "1.3"),
    "G4ENSDFSTATE": ("G4ENSDFSTATEDATA", "3.0"),
    "G4CHANNELING": ("G4CHANNELINGDATA", "2.0"),
}
# read by calosim's physics list (FTFP_BERT constructors with EM option 1)
REQUIRED = ("G4EMLOW", "PhotonEvaporation", "G4PARTICLEXS", "G4ENSDFSTATE")
STANDIN_VERSION = "standin-1"  # bump when calosim.geant4.standin changes its tables
STANDIN_DESCRIPTION = (
    "approximate: calosim stand-in tables (calosim.geant4.standin), no Geant4 data sets: G4EMLOW brem_SB from "
    "the G4eBremsstrahlungRelModel formula (10-30% low below ~10 MeV) + one-shell Sandia photo-effect; crude "
    "G4PARTICLEXS neutron cross sections below 20 MeV; empty ENSDFSTATE and PhotonEvaporation")
INSTALL_HINT = ("install them (run `python -c \"import geant4_pybind\"` in a terminal and answer y to download "
                "them to ~/.geant4_pybind, or unpack the tarballs of https://geant4.web.cern.ch/download/data "
                "into a folder and set GEANT4_DATA_DIR to it) or pass --approximate-data to use calosim's "
                "stand-in tables")


class Geant4DataError(CalosimError):
    """Geant4's data sets are missing (and --approximate-data was not given)."""


@dataclass
class DataSetup:
    """Where Geant4 reads its data from: ``env`` is set in the process before geant4_pybind is imported."""

    env: dict
    approximate: bool
    description: str
    found: dict = field(default_factory=dict)  # name -> folder, for the data sets found installed


def cache_dir() -> Path:
    """calosim's cache: $CALOSIM_CACHE_DIR, else $XDG_CACHE_HOME/calosim, else ~/.cache/calosim."""
    if os.environ.get("CALOSIM_CACHE_DIR"):
        return Path(os.environ["CALOSIM_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "calosim"


def _version_key(name: str, folder: str):
    return [int(x) for x in re.findall(r"\d+", folder[len(name):])]


def _in_base(base: Path, name: str, version: str) -> Path | None:
    if not base.is_dir():
        return None
    exact = base / f"{name}{version}"
    if exact.is_dir():
        return exact
    hits = sorted((p.name for p in base.iterdir() if p.is_dir() and p.name.startswith(name)
                   and re.fullmatch(r"[\d.]*", p.name[len(name):])), key=lambda f: _version_key(name, f))
    return base / hits[-1] if hits else None


def _geant4_config() -> dict:
    """name -> folder from ``geant4-config --datasets`` (a native Geant4), or {}."""
    exe = shutil.which("geant4-config")
    if not exe:
        return {}
    try:
        out = subprocess.run([exe, "--datasets"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    found = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] in DATASETS:
            found[parts[0]] = parts[2]
    return found


def find_datasets(environ=None) -> dict:
    """name -> folder for every data set found in the user's installation (see the module docstring)."""
    environ = os.environ if environ is None else environ
    base = environ.get("GEANT4_DATA_DIR")
    home = Path(environ.get("HOME") or os.path.expanduser("~")) / ".geant4_pybind"
    native = None
    found = {}
    for name, (var, version) in DATASETS.items():
        hit = None
        if environ.get(var) and Path(environ[var]).is_dir():
            hit = Path(environ[var])
        if hit is None and base:
            hit = _in_base(Path(base), name, version)
        if hit is None:
            hit = _in_base(home, name, version)
        if hit is None:
            native = _geant4_config() if native is None else native
            if name in native and Path(native[name]).is_dir():
                hit = Path(native[name])
        if hit is not None:
            found[name] = str(hit)
    return found


def _env_for(folders: dict, data_dir: str) -> dict:
    env = {"GEANT4_DATA_DIR": data_dir}
    env.update({DATASETS[name][0]: folder for name, folder in folders.items()})
    return env


def build_standin(root: Path | None = None) -> Path:
    """The folder of calosim's stand-in data sets, built once (a few seconds) in the cache and reused.

    Built in a temporary folder by a separate Python process (it imports geant4_pybind) and renamed into place,
    so concurrent calls and interrupted builds never leave a half-written folder behind.
    """
    root = Path(root) if root is not None else cache_dir() / "geant4-data"
    target = root / STANDIN_VERSION
    if (target / "COMPLETE").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{STANDIN_VERSION}.", dir=root))
    try:
        env = dict(os.environ)
        env.update(_env_for({name: str(tmp / name) for name in DATASETS}, str(tmp)))
        env.pop("CI", None)
        proc = subprocess.run([sys.executable, "-m", "calosim.geant4.standin", str(tmp)], env=env,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise Geant4DataError(f"building the stand-in Geant4 data in {tmp} failed: {tail[0]}")
        (tmp / "COMPLETE").write_text(STANDIN_VERSION + "\n")
        try:
            tmp.rename(target)
        except OSError:  # another process finished first
            if not (target / "COMPLETE").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def setup_data(approximate: bool = False, environ=None) -> DataSetup:
    """Resolve the data sets: the user's installation when every REQUIRED one is found, else the stand-ins
    with ``approximate=True``, else Geant4DataError (one line: what is missing and how to install it)."""
    found = find_datasets(environ)
    missing = [name for name in REQUIRED if name not in found]
    if not missing:
        empty = cache_dir() / "geant4-data" / "empty"
        folders = dict(found)
        for name in DATASETS:
            if name not in folders:  # not read by calosim's physics list
                folders[name] = str(empty / name)
                os.makedirs(folders[name], exist_ok=True)
        environ = os.environ if environ is None else environ
        data_dir = environ.get("GEANT4_DATA_DIR") or str(Path(found["G4EMLOW"]).parent)
        desc = "installed: " + ", ".join(f"{Path(found[n]).name} ({found[n]})" for n in REQUIRED)
        return DataSetup(_env_for(folders, data_dir), False, desc, found)
    if not approximate:
        raise Geant4DataError(f"Geant4 data sets not found: {', '.join(missing)} (looked at the G4*DATA "
                              "variables, $GEANT4_DATA_DIR, ~/.geant4_pybind and geant4-config); "
                              + INSTALL_HINT)
    root = build_standin()
    folders = {name: str(root / name) for name in DATASETS}
    return DataSetup(_env_for(folders, str(root)), True, STANDIN_DESCRIPTION, {})


def import_geant4(env: dict):
    """Set ``env`` (from DataSetup) in this process and import geant4_pybind; never lets it download."""
    if "GEANT4_DATA_DIR" not in env:
        raise RuntimeError("GEANT4_DATA_DIR missing: geant4_pybind would try to download the data sets")
    os.environ.update(env)
    import geant4_pybind

    return geant4_pybind
