"""Checks of a model file before anything of its size is allocated: a model file is input like any other, and a
crafted width must not make calosim allocate petabytes (or a realistic tens of GB) before it says no.

Order: the header parses (calosim.models.files.read_model_header); the config, built on a backend that
allocates nothing (calosim.backends.shapes), implies at most MAX_PARAMETERS numbers; the file stores exactly
the arrays of those shapes (read from HDF5 metadata, no data). Only then is the model built for real and its
weights read, and every weight array must be finite.
"""

from __future__ import annotations

import h5py
import numpy as np

from calosim.backends.shapes import ShapeOnlyBackend
from calosim.errors import CalosimError, DataError

# The largest model a file may describe: 17 times the paper's CaloGAN (about 32.5 million numbers), 2 GB in
# float32. Larger configs are refused before they are built.
MAX_PARAMETERS = 500_000_000


def expected_shapes(header: dict, build, path) -> dict[str, dict[str, tuple]]:
    """{network: {"params/<name>" | "state/<layer>/<key>": shape}} implied by the header's config and geometry,
    learned without allocating (``build(header, backend)`` builds the model on the backend given)."""
    try:
        model = build(header, ShapeOnlyBackend(str(header.get("dtype", "float32"))))
    except CalosimError as exc:
        raise DataError(f"{path}: the stored config cannot be built: {exc}") from None
    except MemoryError:
        raise DataError(f"{path}: the stored config describes a model beyond any sane size") from None
    except Exception as exc:  # noqa: BLE001 - any config the builder chokes on (negative width, ...) is bad input
        raise DataError(f"{path}: the stored config cannot be built ({type(exc).__name__}: {exc})") from None
    shapes = {}
    for name, net in model.all_networks().items():
        shapes[name] = {f"params/{p.name}": tuple(p.value.shape) for p in net.parameters()}
        for layer in net.walk():
            for key, value in layer.state.items():
                shapes[name][f"state/{layer.name}/{key}"] = tuple(np.shape(value))
    return shapes


def stored_shapes(f: h5py.File, networks, path) -> dict[str, dict[str, tuple]]:
    """The shapes of the arrays a model file stores per network, from metadata only."""
    out = {}
    for name in networks:
        group = f.get(name)
        if not isinstance(group, h5py.Group):
            raise DataError(f"{path}: model file has no /{name} group")
        shapes: dict[str, tuple] = {}

        def visit(key, obj, shapes=shapes):
            if isinstance(obj, h5py.Dataset):
                shapes[key] = tuple(obj.shape)

        try:
            group.visititems(visit)
        except Exception as exc:  # noqa: BLE001 - h5py reports a damaged file in many ways
            raise DataError(f"{path}: /{name} cannot be read (damaged file?): {exc}") from None
        out[name] = shapes
    return out


def check_sizes(path, header: dict, build) -> None:
    """Refuse a model file whose config is beyond MAX_PARAMETERS or does not match the arrays it stores."""
    expected = expected_shapes(header, build, path)
    total = sum(int(np.prod(shape, dtype=np.float64)) for net in expected.values() for shape in net.values())
    if total > MAX_PARAMETERS:
        raise DataError(f"{path}: the stored config describes {total:.3g} numbers, more than calosim loads "
                        f"({MAX_PARAMETERS:.3g}); refusing to allocate it")
    try:
        with h5py.File(path, "r") as f:
            stored = stored_shapes(f, expected, path)
    except OSError as exc:
        raise DataError(f"{path}: cannot open as HDF5 ({exc})") from None
    for name, shapes in expected.items():
        missing = sorted(set(shapes) - set(stored[name]))
        extra = sorted(set(stored[name]) - set(shapes))
        if missing or extra:
            raise DataError(f"{path}: /{name} does not match the stored config (missing: {missing[:3]}, "
                            f"unexpected: {extra[:3]})")
        for key, shape in shapes.items():
            if stored[name][key] != shape:
                raise DataError(f"{path}: /{name}/{key} has shape {stored[name][key]}, the stored config "
                                f"implies {shape}")


def check_weights_finite(model, path) -> None:
    """Refuse a model whose weights or BatchNorm statistics hold NaN or infinite values, naming the array."""
    be = model.backend
    for name, net in model.all_networks().items():
        for p in net.parameters():
            if not bool(be.xp.isfinite(p.value).all()):
                raise DataError(f"{path}: weight array /{name}/params/{p.name} holds NaN or infinite values")
        for layer in net.walk():
            for key, value in layer.state.items():
                if not bool(be.xp.isfinite(value).all()):
                    raise DataError(f"{path}: array /{name}/state/{layer.name}/{key} holds NaN or infinite values")
