"""Calorimeter geometries: the per-layer image shapes and cell sizes that travel with shower data.

A geometry is a tuple of layers; every layer is an image of shape (R, C) of cell energies. Two kinds:

- cartesian layers (CaloGAN, LAGAN): rows and columns are transverse bins centred on the beam axis;
  ``cell_size`` is (row pitch, column pitch) in mm, so the layer covers rows * cell_size[0] mm along the
  row axis (CaloGAN: 480 mm, bins over (-240, 240] mm).
- polar layers (CaloChallenge): rows are the angular (alpha) bins, columns the radial bins whose edges in mm
  are ``r_edges`` (length C + 1); ``cell_size`` is (2 pi / R in radians, mean radial bin width in mm).

Notation: N showers, R rows, C columns of a layer, V = n_cells = sum over layers of R * C.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calosim.errors import DataError


@dataclass(frozen=True)
class LayerGeometry:
    """One layer: ``shape`` (R, C) cells; ``cell_size`` (mm, mm) or, for polar layers, (rad, mm)."""

    name: str
    shape: tuple[int, int]
    cell_size: tuple[float, float]
    r_edges: tuple[float, ...] | None = None  # polar layers only: C + 1 radial edges in mm

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        object.__setattr__(self, "cell_size", tuple(float(s) for s in self.cell_size))
        if self.r_edges is not None:
            object.__setattr__(self, "r_edges", tuple(float(r) for r in self.r_edges))
        if len(self.shape) != 2 or min(self.shape) < 1:
            raise ValueError(f"layer {self.name!r}: shape must be two positive ints, got {self.shape}")
        if self.r_edges is not None and len(self.r_edges) != self.shape[1] + 1:
            raise ValueError(f"layer {self.name!r}: {len(self.r_edges)} r_edges for {self.shape[1]} radial bins")

    @property
    def n_cells(self) -> int:
        return self.shape[0] * self.shape[1]

    @property
    def polar(self) -> bool:
        """True for CaloChallenge (alpha, r) layers."""
        return self.r_edges is not None

    def row_edges(self) -> np.ndarray:
        """Cartesian layers: the R + 1 bin edges in mm along the row axis, centred on 0 (float64)."""
        half = 0.5 * self.shape[0] * self.cell_size[0]
        return np.linspace(-half, half, self.shape[0] + 1)

    def col_edges(self) -> np.ndarray:
        """Cartesian layers: the C + 1 bin edges in mm along the column axis; polar layers: r_edges."""
        if self.r_edges is not None:
            return np.asarray(self.r_edges)
        half = 0.5 * self.shape[1] * self.cell_size[1]
        return np.linspace(-half, half, self.shape[1] + 1)

    def mirror_axes(self) -> tuple[int, ...]:
        """The image axes (0 rows, 1 columns) under whose reflection the cells map onto cells: those whose bin
        edges are symmetric about 0 (every cartesian layer here; none for polar layers, whose r is not)."""
        if self.polar:
            return ()
        return tuple(axis for axis, edges in enumerate((self.row_edges(), self.col_edges()))
                     if np.allclose(edges, -edges[::-1]))

    def to_dict(self) -> dict:
        d = {"name": self.name, "shape": list(self.shape), "cell_size": list(self.cell_size)}
        if self.r_edges is not None:
            d["r_edges"] = list(self.r_edges)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> LayerGeometry:
        r = d.get("r_edges")
        return cls(str(d["name"]), tuple(d["shape"]), tuple(d["cell_size"]), None if r is None else tuple(r))


@dataclass(frozen=True)
class Geometry:
    """A layered calorimeter: ``layers`` in depth order."""

    name: str
    layers: tuple[LayerGeometry, ...]

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers:
            raise ValueError(f"geometry {self.name!r} has no layers")

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def shapes(self) -> tuple[tuple[int, int], ...]:
        return tuple(layer.shape for layer in self.layers)

    @property
    def n_cells(self) -> int:
        """Total number of cells V over all layers."""
        return sum(layer.n_cells for layer in self.layers)

    @property
    def offsets(self) -> tuple[int, ...]:
        """Start of each layer in the flat (V,) layout, plus V at the end (length n_layers + 1)."""
        out = [0]
        for layer in self.layers:
            out.append(out[-1] + layer.n_cells)
        return tuple(out)

    def mirror_axes(self) -> tuple[int, ...]:
        """The axes every layer is mirror symmetric under (a shower is reflected in all its layers at once)."""
        common = set(self.layers[0].mirror_axes())
        for layer in self.layers[1:]:
            common &= set(layer.mirror_axes())
        return tuple(sorted(common))

    def to_dict(self) -> dict:
        """JSON-able description (stored in shower files and model files)."""
        return {"name": self.name, "layers": [layer.to_dict() for layer in self.layers]}

    @classmethod
    def from_dict(cls, d: dict) -> Geometry:
        return cls(str(d["name"]), tuple(LayerGeometry.from_dict(layer) for layer in d["layers"]))

    def flatten(self, layers_list) -> np.ndarray:
        """Per-layer arrays [(N, R_l, C_l)] -> (N, V): layers concatenated, each in C order (row-major)."""
        if len(layers_list) != self.n_layers:
            raise ValueError(f"{len(layers_list)} layer arrays for a {self.n_layers}-layer geometry")
        parts = []
        for arr, layer in zip(layers_list, self.layers):
            if tuple(arr.shape[1:]) != layer.shape:
                raise ValueError(f"layer {layer.name!r}: shape {arr.shape[1:]} != {layer.shape}")
            parts.append(np.reshape(arr, (arr.shape[0], layer.n_cells)))
        return np.concatenate(parts, axis=1)

    def unflatten(self, flat: np.ndarray) -> list[np.ndarray]:
        """(N, V) -> per-layer arrays [(N, R_l, C_l)] (views where possible); inverse of ``flatten``."""
        if flat.ndim != 2 or flat.shape[1] != self.n_cells:
            raise ValueError(f"flat array of shape {flat.shape}; expected (N, {self.n_cells})")
        off = self.offsets
        return [flat[:, off[i]:off[i + 1]].reshape((flat.shape[0],) + layer.shape)
                for i, layer in enumerate(self.layers)]


def calogan_geometry() -> Geometry:
    """The CaloGAN calorimeter (reference section 1): layer_0 (3, 96) of 160 x 5 mm, layer_1 (12, 12) of
    40 x 40 mm, layer_2 (12, 6) of 40 x 80 mm; rows along x, columns along y, all over (-240, 240] mm."""
    return Geometry("calogan", (
        LayerGeometry("layer_0", (3, 96), (160.0, 5.0)),
        LayerGeometry("layer_1", (12, 12), (40.0, 40.0)),
        LayerGeometry("layer_2", (12, 6), (40.0, 80.0)),
    ))


def single_layer_geometry(rows: int = 25, cols: int = 25, name: str = "lagan",
                          cell_size: tuple[float, float] = (1.0, 1.0)) -> Geometry:
    """One cartesian layer of (rows, cols) cells, e.g. LAGAN's 25 x 25 jet images."""
    return Geometry(name, (LayerGeometry("layer_0", (rows, cols), cell_size),))


def calochallenge_geometry(xml_path, particle: str | None = None) -> Geometry:
    """Geometry from a CaloChallenge binning XML file: one polar layer per <Layer> with at least one radial
    bin (layers whose r_edges is just "0" hold no voxels and are skipped, as in the challenge's code).

    The file may hold several <Bin> elements (one per particle); ``particle`` picks one by its ``name``
    attribute, else the first is used. Layer names are "layer_<id>" with the XML id.
    """
    path = Path(xml_path)
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise DataError(f"{path}: cannot read the binning XML ({exc})") from None
    bins = root.findall("Bin") if root.tag != "Bin" else [root]
    if particle is not None:
        bins = [b for b in bins if b.get("name") == particle]
    if not bins:
        raise DataError(f"{path}: no <Bin> element" + (f" named {particle!r}" if particle else ""))
    layers = []
    for el in bins[0].findall("Layer"):
        try:
            edges = tuple(float(x) for x in el.get("r_edges", "").split(","))
            n_alpha = int(el.get("n_bin_alpha", "1"))
        except ValueError:
            raise DataError(f"{path}: layer {el.get('id')} has unreadable r_edges/n_bin_alpha") from None
        if len(edges) < 2:
            continue
        if any(b <= a for a, b in zip(edges, edges[1:])) or n_alpha < 1:
            raise DataError(f"{path}: layer {el.get('id')}: r_edges must increase and n_bin_alpha be >= 1")
        mean_dr = (edges[-1] - edges[0]) / (len(edges) - 1)
        layers.append(LayerGeometry(f"layer_{el.get('id')}", (n_alpha, len(edges) - 1),
                                    (2 * math.pi / n_alpha, mean_dr), edges))
    if not layers:
        raise DataError(f"{path}: no layer with radial bins")
    return Geometry(f"calochallenge:{path.stem}", tuple(layers))
