"""Read and write shower files: the CaloGAN HDF5 layout and the CaloChallenge layout.

CaloGAN layout (one dataset per layer, reference section 1):
    layer_<i>   (N, R_i, C_i)  MeV     one per layer of the geometry (CaloGAN: (3, 96), (12, 12), (12, 6))
    overflow    (N, n_layers)  MeV     optional: energy outside each layer's cells
    energy      (N, 1)         GeV     incident energy
    label       (N,)           class   optional: the class of each shower of a two-class model (read_labels)
CaloChallenge layout (arXiv:2410.21611):
    showers            (N, V)  MeV     voxels, layers concatenated in depth order, each (alpha, r) row-major
    incident_energies  (N, 1)  MeV     incident energy -- MeV in the challenge files; read_showers converts
                                       it to GeV in Showers.energy and write_showers back to MeV
    overflow           (N, n_layers) MeV   optional, a calosim extension (keeps CaloGAN -> CaloChallenge lossless)
    label              (N,)    class   optional, as in the CaloGAN layout
Jet-image layout (LAGAN, arXiv:1701.05927; read only):
    image              (N, 25, 25)  GeV    pixel intensities (LAGAN: pT per pixel); read_showers multiplies by
                                           1000 into MeV cells (a file attribute ``image_unit`` = "MeV" keeps them)
    signal | label | y (N,)         class  the first of these present: integers 0 / 1 (read_labels)
    energy             (N,) or (N, 1) GeV  optional; absent: the sum of the image (GeV), i.e. the jet's total
                                           intensity, which makes the LAGAN response sum / E exactly 1
    Geometry: one 25 x 25 layer (single_layer_geometry, name "jet_image"); images with zero sum and no
    ``energy`` are rejected like any incident energy <= 0.
The CaloChallenge layout does not say its geometry: calosim stores it as the JSON attribute ``geometry``;
for challenge files without it, pass ``binning=`` (a binning XML path or a Geometry).

Every file calosim writes carries the attributes format, units, geometry (JSON), particle, seed,
calosim_version and producer, plus whatever the caller adds. Writes go to a temporary file in the target's
directory, renamed over the target at the end. Every problem with an input file raises one DataError naming
the file: not HDF5 or corrupt, missing dataset, wrong shape, mismatched lengths, NaN / infinite / negative
cells, incident energy <= 0 or not finite.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import h5py
import numpy as np

from calosim._version import __version__
from calosim.data.showers import Showers, check_showers
from calosim.data.writer import CALOCHALLENGE, CALOGAN, FORMATS, LABEL_DATASET, ShowerWriter
from calosim.errors import DataError
from calosim.geometry import Geometry, calochallenge_geometry, calogan_geometry

JET_IMAGE = "jet_image"  # read only
LAYER_NAME = re.compile(r"^layer_(\d+)$")
LABEL_DATASETS = ("signal", "label", "y")

UNITS = {
    CALOGAN: "layer_*/overflow: MeV (deposited), energy: GeV (incident)",
    CALOCHALLENGE: "showers/overflow: MeV (deposited), incident_energies: MeV (incident)",
    JET_IMAGE: "image: GeV (read as MeV cells x 1000), energy: GeV (default: the image sum)",
}

# File attributes that become Showers fields rather than entries of Showers.attrs.
_FIELD_ATTRS = ("geometry", "particle", "format", "units", "_json_attrs")


def _open(path) -> h5py.File:
    """Open an HDF5 file for reading, or raise one DataError naming it."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not a shower file")
    try:
        if not h5py.is_hdf5(path):
            raise DataError(f"{path}: not an HDF5 file")
        return h5py.File(path, "r")
    except DataError:
        raise
    except Exception as exc:  # h5py raises OSError and friends for truncated / corrupt files
        raise DataError(f"{path}: cannot open as HDF5 (corrupt or truncated?): {exc}") from None


def _format_of(f: h5py.File, path) -> str:
    if "showers" in f and "incident_energies" in f:
        return CALOCHALLENGE
    if "layer_0" in f:
        return CALOGAN
    if "image" in f and any(name in f for name in LABEL_DATASETS):
        return JET_IMAGE
    names = ", ".join(sorted(f.keys())) or "none"
    raise DataError(f"{path}: neither a CaloGAN file (needs layer_0 ... and energy), a CaloChallenge file "
                    f"(needs showers and incident_energies) nor a jet-image file (needs image and one of "
                    f"{', '.join(LABEL_DATASETS)}); datasets found: {names}")


def detect_format(path) -> str:
    """"calogan", "calochallenge" or "jet_image" from the datasets a file holds (DataError if none)."""
    with _open(path) as f:
        return _format_of(f, path)


def _attr_value(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray):
        return [_attr_value(x) for x in v.tolist()]
    if isinstance(v, np.generic):
        return v.item()
    return v


def _read_attrs(f: h5py.File) -> dict:
    attrs = {k: _attr_value(v) for k, v in f.attrs.items()}
    for key in attrs.pop("_json_attrs", []) or []:
        if key in attrs and isinstance(attrs[key], str):
            try:
                attrs[key] = json.loads(attrs[key])
            except ValueError:
                pass
    return attrs


def _as_binning(binning) -> Geometry:
    if isinstance(binning, Geometry):
        return binning
    return calochallenge_geometry(binning)


class ShowerFile:
    """An open shower file of either format; reads row ranges without loading the rest.

    Use as a context manager (or call close()). ``len(f)`` is N; ``f.read(start, stop)`` returns Showers.
    """

    def __init__(self, path, binning=None, validate: bool = True):
        self.path = Path(path)
        self.validate = validate
        self._f = _open(self.path)
        try:
            self._setup(binning)
        except Exception:
            self._f.close()
            raise

    # -- opening -------------------------------------------------------------------------------------------
    def _dataset(self, name: str) -> h5py.Dataset:
        obj = self._f.get(name)
        if obj is None:
            raise DataError(f"{self.path}: missing dataset {name!r} ({self.format} format)")
        if not isinstance(obj, h5py.Dataset):
            raise DataError(f"{self.path}: {name!r} is a group, not a dataset")
        return obj

    def _setup(self, binning):
        f = self._f
        self.format = _format_of(f, self.path)
        self.attrs = _read_attrs(f)
        self.particle = str(self.attrs.get("particle", "unknown"))
        geometry = None
        if binning is not None:
            geometry = _as_binning(binning)
        if "geometry" in self.attrs:
            g = self.attrs["geometry"]
            try:
                g = json.loads(g) if isinstance(g, str) else g
            except ValueError:
                g = None
            if isinstance(g, dict) and "layers" in g:
                if geometry is None:
                    try:
                        geometry = Geometry.from_dict(g)
                    except (ValueError, KeyError, TypeError) as exc:
                        raise DataError(f"{self.path}: unreadable geometry attribute ({exc})") from None
            else:  # free text (e.g. the Geant4 files' description of the detector): keep it under another name
                self.attrs["geometry_description"] = self.attrs["geometry"]
        self.attrs = {k: v for k, v in self.attrs.items() if k not in _FIELD_ATTRS}

        self._labels = None
        if self.format == JET_IMAGE:
            self._setup_jet_image()
            return
        if self.format == CALOGAN:
            if geometry is None:
                geometry = self._infer_calogan_geometry()
            self._cells = [self._dataset(layer.name) for layer in geometry.layers]
            self._energy = self._dataset("energy")
            for ds, layer in zip(self._cells, geometry.layers):
                if ds.ndim != 3 or tuple(ds.shape[1:]) != layer.shape:
                    raise DataError(f"{self.path}: dataset {layer.name!r} has shape {ds.shape}; "
                                    f"expected (N, {layer.shape[0]}, {layer.shape[1]})")
        else:
            if geometry is None:
                raise DataError(f"{self.path}: CaloChallenge file without a geometry attribute; pass its binning "
                                "XML (--binning of data show / data slice / evaluate; for train or generate, "
                                "first write a file that carries it: calosim data slice FILE --binning XML ...)")
            self._cells = [self._dataset("showers")]
            self._energy = self._dataset("incident_energies")
            ds = self._cells[0]
            if ds.ndim != 2 or ds.shape[1] != geometry.n_cells:
                raise DataError(f"{self.path}: dataset 'showers' has shape {ds.shape}; the binning "
                                f"{geometry.name!r} has {geometry.n_cells} voxels")
        self.geometry = geometry
        e = self._energy
        if not (e.ndim == 1 or (e.ndim == 2 and e.shape[1] == 1)):
            raise DataError(f"{self.path}: dataset {e.name.lstrip('/')!r} has shape {e.shape}; expected (N, 1)")
        self._overflow = None
        if "overflow" in f:
            self._overflow = self._dataset("overflow")
            if self._overflow.shape[1:] != (geometry.n_layers,):
                raise DataError(f"{self.path}: dataset 'overflow' has shape {self._overflow.shape}; "
                                f"expected (N, {geometry.n_layers})")
        if LABEL_DATASET in f:  # class labels of a two-class model's generated showers
            self._labels, self.label_name = self._dataset(LABEL_DATASET), LABEL_DATASET
        lengths = {ds.name.lstrip("/"): ds.shape[0] for ds in self._cells + [e]
                   + [ds for ds in (self._overflow, self._labels) if ds is not None]}
        if len(set(lengths.values())) != 1:
            desc = ", ".join(f"{k}: {v}" for k, v in lengths.items())
            raise DataError(f"{self.path}: datasets have mismatched lengths ({desc})")
        self.n = int(e.shape[0])

    def _setup_jet_image(self):
        from calosim.geometry import single_layer_geometry

        self.geometry = single_layer_geometry(25, 25, name="jet_image")
        image = self._dataset("image")
        if image.ndim != 3 or tuple(image.shape[1:]) != (25, 25):
            raise DataError(f"{self.path}: dataset 'image' has shape {image.shape}; expected (N, 25, 25)")
        self._cells = [image]
        label_name = next(name for name in LABEL_DATASETS if name in self._f)
        self._labels = self._dataset(label_name)
        self.label_name = label_name
        self._energy = self._dataset("energy") if "energy" in self._f else None
        self._overflow = None
        unit = str(self.attrs.get("image_unit", "GeV"))
        if unit not in ("GeV", "MeV"):
            raise DataError(f"{self.path}: attribute image_unit must be 'GeV' or 'MeV', got {unit!r}")
        self._image_scale = 1000.0 if unit == "GeV" else 1.0
        shapes = {"image": image.shape, label_name: self._labels.shape}
        if self._energy is not None:
            shapes["energy"] = self._energy.shape
            if not (self._energy.ndim == 1 or (self._energy.ndim == 2 and self._energy.shape[1] == 1)):
                raise DataError(f"{self.path}: dataset 'energy' has shape {self._energy.shape}; expected (N,)")
        if self._labels.ndim != 1:
            raise DataError(f"{self.path}: dataset {label_name!r} has shape {self._labels.shape}; expected (N,)")
        if len({shape[0] for shape in shapes.values()}) != 1:
            desc = ", ".join(f"{k}: {v[0]}" for k, v in shapes.items())
            raise DataError(f"{self.path}: datasets have mismatched lengths ({desc})")
        self.n = int(image.shape[0])

    def read_labels(self, start: int = 0, stop: int | None = None) -> np.ndarray | None:
        """(N,) int64 class labels of rows [start, stop) (jet-image files, or generated files of a two-class model),
        or None for files without labels.
        Labels must be whole numbers >= 0 (e.g. 1.0 / 0.0 signal flags)."""
        if self._labels is None:
            return None
        start, stop, _ = slice(start, stop).indices(self.n)
        raw = np.asarray(self._labels[start:max(start, stop)])
        labels = raw.astype(np.int64)
        if not np.all(np.isfinite(raw.astype(np.float64))) or np.any(labels != raw) or np.any(labels < 0):
            raise DataError(f"{self.path}: dataset {self.label_name!r} holds labels that are not whole numbers >= 0")
        return labels

    def _infer_calogan_geometry(self) -> Geometry:
        from calosim.geometry import LayerGeometry

        indices = sorted(int(m.group(1)) for m in map(LAYER_NAME.match, self._f.keys()) if m)
        names = [f"layer_{i}" for i in range(indices[-1] + 1)]
        missing = [name for name in names if name not in self._f]
        if missing:  # a gap is a damaged file, never a geometry with fewer layers
            raise DataError(f"{self.path}: missing dataset {missing[0]!r} (the file has "
                            f"{', '.join(n for n in names if n in self._f)})")
        shapes = []
        for name in names:
            ds = self._dataset(name)
            if ds.ndim != 3:
                raise DataError(f"{self.path}: dataset {name!r} has shape {ds.shape}; expected (N, rows, cols)")
            shapes.append(tuple(ds.shape[1:]))
        reference = calogan_geometry()
        if len(shapes) == reference.n_layers:
            return reference  # a 3-layer file without a geometry attribute is CaloGAN (shapes checked next)
        return Geometry("unknown", tuple(LayerGeometry(n, s, (1.0, 1.0)) for n, s in zip(names, shapes)))

    # -- reading -------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.n

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._f.close()

    def _read(self, ds: h5py.Dataset, start: int, stop: int) -> np.ndarray:
        try:
            return np.asarray(ds[start:stop], dtype=np.float32)
        except Exception as exc:
            raise DataError(f"{self.path}: cannot read dataset {ds.name.lstrip('/')!r} rows {start}:{stop} "
                            f"(corrupt?): {exc}") from None

    def read_energy(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Incident energies (GeV, float64) of rows [start, stop) alone, unchecked (the cells are not read)."""
        start, stop, _ = slice(start, stop).indices(self.n)
        if self._energy is None:  # a jet-image file's energy is its image sum
            return np.asarray(self.read(start, stop).energy, np.float64)
        raw = self._read(self._energy, start, max(start, stop)).reshape(-1)
        if self.format == CALOCHALLENGE:
            raw = (self._energy[start:max(start, stop)].astype(np.float64).reshape(-1) / 1000.0).astype(np.float32)
        return raw.astype(np.float64)

    def read(self, start: int = 0, stop: int | None = None) -> Showers:
        """Showers of rows [start, stop) as float32 (MeV cells, GeV energy)."""
        start, stop, _ = slice(start, stop).indices(self.n)
        stop = max(start, stop)
        if self.format == JET_IMAGE:
            image = self._read(self._cells[0], start, stop)
            if self._energy is None:
                energy = image.reshape(len(image), -1).sum(axis=1, dtype=np.float64).astype(np.float32)
                energy *= np.float32(self._image_scale / 1000.0)
            else:
                energy = self._read(self._energy, start, stop).reshape(-1)
            showers = Showers([image * np.float32(self._image_scale)], energy, self.geometry, None, self.particle,
                              dict(self.attrs))
            if self.validate:
                check_showers(showers, self.path, offset=start)
            return showers
        energy = self._read(self._energy, start, stop).reshape(-1)
        if self.format == CALOCHALLENGE:
            energy = (self._energy[start:stop].astype(np.float64).reshape(-1) / 1000.0).astype(np.float32)
            layers = self.geometry.unflatten(self._read(self._cells[0], start, stop))
            layers = [np.ascontiguousarray(layer) for layer in layers]
        else:
            layers = [self._read(ds, start, stop) for ds in self._cells]
        overflow = None if self._overflow is None else self._read(self._overflow, start, stop)
        showers = Showers(layers, energy, self.geometry, overflow, self.particle, dict(self.attrs))
        if self.validate:
            check_showers(showers, self.path, offset=start)
        return showers


def open_showers(path, binning=None, validate: bool = True) -> ShowerFile:
    """Open a shower file (either format) for reading row ranges; see ShowerFile."""
    return ShowerFile(path, binning=binning, validate=validate)


def read_showers(path, start: int = 0, stop: int | None = None, binning=None, validate: bool = True) -> Showers:
    """Read rows [start, stop) of a CaloGAN or CaloChallenge file (format detected) as float32 Showers.

    binning: for CaloChallenge files without a geometry attribute, a binning XML path or a Geometry.
    """
    with open_showers(path, binning=binning, validate=validate) as f:
        return f.read(start, stop)


def write_showers(path, showers: Showers, format: str = CALOGAN, compression: str | None = "gzip",
                  **attrs) -> Path:
    """Write ``showers`` to ``path`` in ``format`` ("calogan" or "calochallenge"), float32, atomically
    (calosim.data.writer.ShowerWriter).

    File attributes: showers.attrs, then ``attrs`` (e.g. seed=..., producer=...), then the ones calosim
    always sets: format, units, geometry (JSON), particle, calosim_version; seed and producer default to
    "unknown" and "calosim <version>" when nobody gave them. Values that HDF5 cannot hold (dicts, mixed lists,
    None) are stored as JSON and decoded again by read_showers.
    """
    path = Path(path)
    if format not in FORMATS:
        raise DataError(f"{path}: unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    check_showers(showers, source=f"{path} (data to write)")
    meta = {"seed": "unknown", "producer": f"calosim {__version__}"}
    meta.update(showers.attrs)
    meta.update(attrs)
    meta.update(shower_file_attrs(format, showers.geometry, showers.particle))
    with ShowerWriter(path, showers.geometry, len(showers), format, meta, compression,
                      overflow=showers.overflow is not None) as out:
        out.write(0, showers.layers, showers.energy, overflow_mev=showers.overflow)
        for name, values in showers.datasets.items():
            out.write_dataset(name, values)
    return path


def shower_file_attrs(format: str, geometry, particle: str) -> dict:
    """The attributes every shower file calosim writes carries: format, units, geometry (JSON), particle and
    calosim_version."""
    if format not in FORMATS:
        raise DataError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    return {"format": format, "units": UNITS[format], "geometry": json.dumps(geometry.to_dict()),
            "particle": particle, "calosim_version": __version__}


def read_labels(path, start: int = 0, stop: int | None = None) -> np.ndarray | None:
    """Class labels (N,) int64 of rows [start, stop) of a jet-image file or a two-class model's generated file;
    None for files without labels."""
    with open_showers(path, validate=False) as f:
        return f.read_labels(start, stop)


def convert(src, dst, format: str, binning=None, **attrs) -> Path:
    """Read ``src`` (either format) and write it to ``dst`` in ``format``; lossless for float32 data."""
    showers = read_showers(src, binning=binning)
    return write_showers(dst, showers, format=format, **attrs)
