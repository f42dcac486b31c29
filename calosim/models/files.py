"""Model files: one HDF5 file per model of any type (calosim.models.registry), written atomically, readable
without calosim. Training checkpoints (calosim.training.checkpoint) extend this layout.

Model file (RUN_DIR/best.h5, RUN_DIR/last.h5, or any path), layout version 1:

    attributes of /
        format          "calosim-model"
        format_version  1
        model           the model type: "calogan", "wgan-gp", "vae", "lagan" (calosim.models.registry)
        config          JSON of the type's config, e.g. calosim.models.calogan.config.CaloGANConfig (architecture
                        and training settings)
        geometry        JSON of calosim.geometry.Geometry (layer names, shapes (R, C), cell sizes in mm)
        particle        "e+", "gamma", ...
        energy_range    [lo, hi] GeV: the incident energies the generator was trained on (conditioning range)
        image_scale     (calogan) MeV per training unit (1000: the networks see GeV)
        conditioning    (other types) the energy conditioning transform
                        (both from the model's ``file_attributes()``)
        units           a sentence saying the above
        dtype           "float32" or "float64" (of the arrays)
        calosim_version
        networks        JSON list of the network groups, in order
        energy_model    (energy-factorised models) JSON of calosim.models.energy.LayerEnergyConfig
        sampling_mirror_axes  (where set) JSON list of the axes (0 rows, 1 columns) every sampled shower is
                        reflected along at random (ShowerModel.apply_mirror)
        plus whatever the trainer adds (epoch, seed, backend, validation score)
    /generator/params/<parameter name>        one dataset per trainable array, e.g.
        /generator/params/generator.stream0.0.dense/kernel   (65, 3920): latent 64 plus log(E / 100 GeV)
                                                               (g_energy_scaled_output; the paper: (1024, 17640))
        (the "/" inside a parameter name nests one group deeper: layer name, then parameter)
    /generator/state/<layer name>/<buffer>    BatchNorm moving_mean / moving_variance (C,)
    /discriminator/params/..., /discriminator/state/...   the same for the discriminator
    (other types: one such group per network, e.g. /generator and /critic for wgan-gp, /encoder and /decoder
    for vae)
    /fitted/<name>                            values fitted from the training data (e.g. WGAN-GP's
                                              layer_energy_scales (L,); the calibration's cell_calibration
                                              (5, V), calosim.models.calibration, energy_map, spread_* and
                                              spectrum_tail (their modules); the energy model's energy_v_*);
                                              absent when there are none

Array layouts follow calosim.layers: Dense kernel (F_in, F_out) and bias (F_out,); Conv2D kernel
(K_h, K_w, C_in, C_out); LocallyConnected2D kernel (H_out, W_out, K_h*K_w*C_in, C_out) with the patch axis
ordered (k_h, k_w, c_in) and bias (H_out, W_out, C_out); images channels-last (N, R, C, 1). The layer order
and the forward pass of each model are written down in the docstring of calosim/models/calogan/; with h5py and
NumPy alone the generator can be re-run from this file.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from calosim._version import __version__
from calosim.atomic import atomic_h5, require_finite
from calosim.errors import DataError
from calosim.geometry import Geometry
from calosim.models.registry import MODEL_TYPES, get_model_type

FORMAT = "calosim-model"
FORMAT_VERSION = 1
UNITS = ("networks work in training units = MeV / image_scale (GeV); incident energy and energy_range in GeV; "
         "generated images times image_scale are MeV")
FITTED = "fitted"


# --------------------------------------------------------------------------- arrays of a network
def model_arrays(net) -> dict[str, np.ndarray]:
    """{"params/<name>": array, "state/<layer>/<key>": array} of a built network, as NumPy arrays."""
    be = net.backend
    out = {f"params/{p.name}": np.array(be.to_numpy(p.value)) for p in net.parameters()}
    for layer in net.walk():
        for key, value in layer.state.items():
            out[f"state/{layer.name}/{key}"] = np.array(be.to_numpy(value))
    return out


def set_model_arrays(net, arrays: dict[str, np.ndarray], source="arrays") -> None:
    """Load arrays saved by :func:`model_arrays` into a network built with the same config and geometry."""
    be = net.backend
    expected = model_arrays(net)
    missing, extra = sorted(set(expected) - set(arrays)), sorted(set(arrays) - set(expected))
    if missing or extra:
        raise DataError(f"{source}: arrays do not match the model {net.name!r} (missing: {missing[:3]}, "
                        f"unexpected: {extra[:3]})")
    for key, value in arrays.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise DataError(f"{source}: {key} has shape {value.shape}, the model expects {expected[key].shape}")
    for p in net.parameters():
        p.value[...] = be.asarray(arrays[f"params/{p.name}"], dtype=p.value.dtype)
    for layer in net.walk():
        for key, value in layer.state.items():
            layer.state[key] = be.asarray(arrays[f"state/{layer.name}/{key}"], dtype=value.dtype)


def write_group(group: h5py.Group, arrays: dict[str, np.ndarray]) -> None:
    for key, value in arrays.items():
        group.create_dataset(key, data=value, track_times=False)


def read_group(group: h5py.Group) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            out[name] = obj[()]

    group.visititems(visit)
    return out


# --------------------------------------------------------------------------- model files
def write_model(f: h5py.File, model, extra: dict | None = None, target=None) -> None:
    """The model-file layout into an open file: attributes of /, one group per network, /fitted; a NaN or
    infinite array is refused (DataError naming ``target`` and the array) before anything is published."""
    target = target or f.filename
    attrs = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "model": model.model_type,
        "config": json.dumps(model.config.to_dict()), "geometry": json.dumps(model.geometry.to_dict()),
        "particle": model.particle, "energy_range": np.asarray(model.energy_range, np.float64),
        **model.file_attributes(),
        "units": UNITS, "dtype": model.backend.dtype, "calosim_version": __version__,
        "networks": json.dumps(list(model.all_networks())),
    }
    if model.energy_model is not None:
        attrs["energy_model"] = json.dumps(model.energy_model.config.to_dict())
    if model.sampling_mirror_axes:
        attrs["sampling_mirror_axes"] = json.dumps(list(model.sampling_mirror_axes))
    for key, value in (extra or {}).items():
        attrs[key] = value if isinstance(value, (str, int, float, np.ndarray)) else json.dumps(value)
    for key, value in attrs.items():
        f.attrs[key] = value
    for name, net in model.all_networks().items():
        arrays = model_arrays(net)
        for key, value in arrays.items():
            require_finite(value, f"weight array /{name}/{key}", target)
        write_group(f.create_group(name), arrays)
    if model.fitted:
        for key, value in model.fitted.items():
            require_finite(value, f"fitted value /{FITTED}/{key}", target)
        write_group(f.create_group(FITTED), model.fitted)


def save_model(path, model, **extra) -> Path:
    """Write ``model`` (of any type) to one HDF5 model file, atomically; ``extra`` become attributes."""
    path = Path(path)
    with atomic_h5(path, track_order=True) as f:
        write_model(f, model, extra, target=path)
    return path


def store_fitted_values(path, values: dict, removed=()) -> None:
    """Add or replace fitted values /fitted/KEY of a model file ({KEY: array}) and drop those named in ``removed``;
    the file is rewritten whole beside it and renamed over it, so that a failure leaves it as it was."""
    values = {key: np.asarray(value, np.float64) for key, value in values.items()}
    for key, value in values.items():
        require_finite(value, f"fitted value /{FITTED}/{key}", path)
    with h5py.File(path, "r") as src, atomic_h5(path, track_order=True) as dst:
        for name, attr in src.attrs.items():
            dst.attrs[name] = attr
        for name in src:
            src.copy(src[name], dst, name=name)
        group = dst.require_group(FITTED)
        for key in (*values, *removed):
            if key in group:
                del group[key]
        for key, value in values.items():
            group.create_dataset(key, data=value)


def read_model_header(path) -> dict:
    """The attributes of a model file of any type, checking that it is one: ``model`` (type name), ``config``
    (the type's config object), ``geometry`` (Geometry), ``energy_range`` and ``fitted`` decoded. Anything
    unreadable is one DataError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such model file")
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
            fitted = read_group(f[FITTED]) if FITTED in f else {}
    except Exception as exc:  # noqa: BLE001 - h5py reports damaged files as OSError, KeyError, RuntimeError ...
        raise DataError(f"{path}: cannot open as HDF5 ({exc})") from None
    if attrs.get("format") != FORMAT:
        raise DataError(f"{path}: not a calosim model file (format attribute {attrs.get('format')!r})")
    name = str(attrs.get("model", "calogan"))
    if name not in MODEL_TYPES:
        raise DataError(f"{path}: model type {name!r} is not known to this calosim ({', '.join(MODEL_TYPES)})")
    try:
        version = int(attrs.get("format_version", 0))
    except (TypeError, ValueError):
        raise DataError(f"{path}: unreadable format_version {attrs.get('format_version')!r}") from None
    if version > FORMAT_VERSION:
        raise DataError(f"{path}: model file layout version {attrs['format_version']} is newer than this "
                        f"calosim ({__version__}) reads; upgrade calosim")
    kind = MODEL_TYPES[name]
    try:
        config, stored_fitted = kind.split_stored_config(json.loads(attrs["config"]))
        attrs["config"] = kind.config_from_dict(config)
        attrs["geometry"] = Geometry.from_dict(json.loads(attrs["geometry"]))
        attrs["energy_range"] = tuple(float(x) for x in attrs["energy_range"])
    except KeyError as exc:
        raise DataError(f"{path}: model file without the {exc} attribute") from None
    except Exception as exc:  # noqa: BLE001 - a malformed attribute of any kind is one line
        raise DataError(f"{path}: malformed model attributes ({type(exc).__name__}: {exc})") from None
    energy_range = attrs["energy_range"]
    if len(energy_range) != 2 or not (np.isfinite(energy_range).all() and 0 < energy_range[0] < energy_range[1]):
        raise DataError(f"{path}: energy_range {attrs['energy_range']} is not 0 < lo < hi GeV")
    attrs["model"] = name
    attrs["fitted"] = {**stored_fitted, **fitted}
    if "energy_model" in attrs:
        from calosim.models.energy import LayerEnergyConfig

        try:
            attrs["energy_model"] = LayerEnergyConfig.from_dict(json.loads(attrs["energy_model"]))
        except Exception as exc:  # noqa: BLE001 - a malformed attribute of any kind is one line
            raise DataError(f"{path}: malformed energy_model attribute ({type(exc).__name__}: {exc})") from None
    axes = attrs.get("sampling_mirror_axes", "[]")
    try:
        attrs["sampling_mirror_axes"] = tuple(int(a) for a in json.loads(axes))
    except Exception:  # noqa: BLE001 - a malformed attribute of any kind is one line
        raise DataError(f"{path}: malformed sampling_mirror_axes attribute {axes!r}") from None
    symmetric = attrs["geometry"].mirror_axes()
    if any(a not in symmetric for a in attrs["sampling_mirror_axes"]):
        raise DataError(f"{path}: sampling_mirror_axes {list(attrs['sampling_mirror_axes'])}, but the geometry is "
                        f"mirror symmetric under {list(symmetric)} only")
    return attrs


def build_from_header(header: dict, backend, rng: np.random.Generator | None = None):
    """A model of the header's type, config, geometry, particle, energy range and fitted values, with weights
    drawn from ``rng`` (default: seed 0; a file's arrays replace them)."""
    kind = get_model_type(header["model"])
    rng = rng if rng is not None else np.random.default_rng(0)
    model = kind.build(header["config"], header["geometry"], backend, rng,
                       particle=str(header.get("particle", "unknown")), energy_range=header["energy_range"],
                       fitted=header.get("fitted") or None)
    model.fitted.update({k: np.asarray(v, np.float64) for k, v in (header.get("fitted") or {}).items()})
    if header.get("energy_model") is not None:
        model.attach_energy_model(header["energy_model"], rng)
    model.sampling_mirror_axes = tuple(header.get("sampling_mirror_axes", ()))
    return model


def read_networks(f: h5py.File, model, path) -> None:
    """Every network's arrays from an open model file or checkpoint into ``model``."""
    for name, net in model.all_networks().items():
        if name not in f:
            raise DataError(f"{path}: model file has no /{name} group")
        set_model_arrays(net, read_group(f[name]), source=f"{path}:/{name}")


def load_model(path, backend):
    """The model of a model file or training checkpoint (of any type, attribute ``model``) built on
    ``backend`` (a Backend), weights and BatchNorm statistics restored; the arrays are converted to the
    backend's dtype, so a model trained on any backend loads on every other."""
    from calosim.models.file_checks import check_sizes, check_weights_finite

    header = read_model_header(path)
    check_sizes(path, header, build_from_header)  # before anything of the config's size is allocated
    model = build_from_header(header, backend)
    try:
        with h5py.File(path, "r") as f:
            read_networks(f, model, path)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - damaged array data
        raise DataError(f"{path}: the weight arrays cannot be read (damaged file?): {exc}") from None
    check_weights_finite(model, path)
    model.attrs = {k: v for k, v in header.items()
                   if k not in ("config", "geometry", "fitted", "energy_model", "sampling_mirror_axes")}
    return model
