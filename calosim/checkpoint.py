"""Model files and training checkpoints: one HDF5 file each, written atomically, readable without calosim.

Model file (RUN_DIR/best.h5, RUN_DIR/last.h5, or any path), layout version 1:

    attributes of /
        format          "calosim-model"
        format_version  1
        model           "calogan" (or "wgan-gp", "vae", "lagan": calosim.models.registry)
        config          JSON of the type's config, e.g. calosim.models.config.CaloGANConfig (architecture and
                        training settings)
        geometry        JSON of calosim.geometry.Geometry (layer names, shapes (R, C), cell sizes in mm)
        particle        "e+", "gamma", ...
        energy_range    [lo, hi] GeV: the incident energies the generator was trained on (conditioning range)
        image_scale     (calogan) MeV per training unit (1000: the networks see GeV)
        conditioning    (other types) the energy conditioning transform
        units           a sentence saying the above
        dtype           "float32" or "float64" (of the arrays)
        calosim_version
        networks        (other types) JSON list of the network groups, in order
        plus whatever the trainer adds (epoch, seed, backend, validation score)
    /generator/params/<parameter name>        one dataset per trainable array, e.g.
        /generator/params/generator.stream0.0.dense/kernel   (65, 3920): latent 64 plus log(E / 100 GeV)
                                                               (g_energy_scaled_output; the paper: (1024, 17640))
        (the "/" inside a parameter name nests one group deeper: layer name, then parameter)
    /generator/state/<layer name>/<buffer>    BatchNorm moving_mean / moving_variance (C,)
    /discriminator/params/..., /discriminator/state/...   the same for the discriminator
    (other types: one such group per network, e.g. /generator and /critic for wgan-gp, /encoder and /decoder
    for vae)

Array layouts follow calosim.layers: Dense kernel (F_in, F_out) and bias (F_out,); Conv2D kernel
(K_h, K_w, C_in, C_out); LocallyConnected2D kernel (H_out, W_out, K_h*K_w*C_in, C_out) with the patch axis
ordered (k_h, k_w, c_in) and bias (H_out, W_out, C_out); images channels-last (N, R, C, 1). The layer order
and the forward pass of each model are written down in calosim/models/calogan.py's docstring; with h5py and
NumPy alone the generator can be re-run from this file.

Training checkpoint (RUN_DIR/checkpoint.h5): everything of a model file plus
    /optimizer/generator/{t, m/<name>, v/<name>}, /optimizer/discriminator/...   Adam's step and moments
                              (one group per entry of the trainer's ``optimizers``)
    attribute trainer_state   JSON: epochs done, RNG states (noise, data shuffle, every Dropout layer),
                              best validation score and epoch, the trainer's own state, the run's options
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import h5py
import numpy as np

from calosim._version import __version__
from calosim.errors import DataError, TrainingError
from calosim.geometry import Geometry

FORMAT = "calosim-model"
FORMAT_VERSION = 1
UNITS = ("networks work in training units = MeV / image_scale (GeV); incident energy and energy_range in GeV; "
         "generated images times image_scale are MeV")


# --------------------------------------------------------------------------- arrays of a model
def model_arrays(model) -> dict[str, np.ndarray]:
    """{"params/<name>": array, "state/<layer>/<key>": array} of a built model, as NumPy arrays."""
    be = model.backend
    out = {f"params/{p.name}": np.array(be.to_numpy(p.value)) for p in model.parameters()}
    for layer in model.walk():
        for key, value in layer.state.items():
            out[f"state/{layer.name}/{key}"] = np.array(be.to_numpy(value))
    return out


def set_model_arrays(model, arrays: dict[str, np.ndarray], source="arrays") -> None:
    """Load arrays saved by :func:`model_arrays` into a model built with the same config and geometry."""
    be = model.backend
    expected = model_arrays(model)
    missing, extra = sorted(set(expected) - set(arrays)), sorted(set(arrays) - set(expected))
    if missing or extra:
        raise DataError(f"{source}: arrays do not match the model {model.name!r} (missing: {missing[:3]}, "
                        f"unexpected: {extra[:3]})")
    for key, value in arrays.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise DataError(f"{source}: {key} has shape {value.shape}, the model expects {expected[key].shape}")
    for p in model.parameters():
        p.value[...] = be.asarray(arrays[f"params/{p.name}"], dtype=p.value.dtype)
    for layer in model.walk():
        for key, value in layer.state.items():
            layer.state[key] = be.asarray(arrays[f"state/{layer.name}/{key}"], dtype=value.dtype)


# --------------------------------------------------------------------------- HDF5 helpers
def _write_group(group: h5py.Group, arrays: dict[str, np.ndarray]) -> None:
    for key, value in arrays.items():
        group.create_dataset(key, data=value, track_times=False)


def _read_group(group: h5py.Group) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            out[name] = obj[()]

    group.visititems(visit)
    return out


def atomic_h5(path, fill) -> Path:
    """Write an HDF5 file by calling ``fill(h5py.File)`` on a temporary file in the target's directory, then
    fsync and rename it over ``path``: a reader (or a crash) never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w", track_order=True) as f:
            fill(f)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


CONDITIONING = "c = log(E / energy_range[0]) / log(energy_range[1] / energy_range[0]), E in GeV"


def _model_attrs(f: h5py.File, model, extra: dict | None) -> None:
    """The attributes of /, in the order of the layout: CaloGAN files carry ``image_scale``, the other types
    ``conditioning`` and (last) ``networks``."""
    from calosim.models.registry import model_type_of, networks_of

    kind = model_type_of(model)
    attrs = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "model": kind,
        "config": json.dumps(model.config.to_dict()), "geometry": json.dumps(model.geometry.to_dict()),
        "particle": model.particle, "energy_range": np.asarray(model.energy_range, np.float64),
    }
    if kind == "calogan":
        attrs["image_scale"] = float(model.config.image_scale)
    else:
        attrs["conditioning"] = CONDITIONING
    attrs.update({"units": UNITS, "dtype": model.backend.dtype, "calosim_version": __version__})
    if kind != "calogan":
        attrs["networks"] = json.dumps(list(networks_of(model)))
    for key, value in (extra or {}).items():
        attrs[key] = value if isinstance(value, (str, int, float, np.ndarray)) else json.dumps(value)
    for key, value in attrs.items():
        f.attrs[key] = value


def _write_model(f: h5py.File, model, extra: dict | None) -> None:
    from calosim.models.registry import networks_of

    _model_attrs(f, model, extra)
    for name, net in networks_of(model).items():
        _write_group(f.create_group(name), model_arrays(net))


# --------------------------------------------------------------------------- model files
def save_model(path, model, **extra) -> Path:
    """Write ``model`` (of any type of calosim.models.registry) to one HDF5 model file; ``extra`` become
    attributes."""
    return atomic_h5(path, lambda f: _write_model(f, model, extra))


def read_model_header(path) -> dict:
    """The attributes of a model file of any type, checking that it is one: ``model`` (type name), ``config``
    (the type's config object), ``geometry`` (Geometry) and ``energy_range`` decoded."""
    from calosim.models.registry import MODEL_TYPES

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such model file")
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    except OSError as exc:
        raise DataError(f"{path}: cannot open as HDF5 ({exc})") from None
    if attrs.get("format") != FORMAT:
        raise DataError(f"{path}: not a calosim model file (format attribute {attrs.get('format')!r})")
    kind = str(attrs.get("model", "calogan"))
    if kind not in MODEL_TYPES:
        raise DataError(f"{path}: model type {kind!r} is not known to this calosim ({', '.join(MODEL_TYPES)})")
    if int(attrs.get("format_version", 0)) > FORMAT_VERSION:
        raise DataError(f"{path}: model file layout version {attrs['format_version']} is newer than this "
                        f"calosim ({__version__}) reads; upgrade calosim")
    attrs["model"] = kind
    attrs["config"] = MODEL_TYPES[kind].config_from_dict(json.loads(attrs["config"]))
    attrs["geometry"] = Geometry.from_dict(json.loads(attrs["geometry"]))
    attrs["energy_range"] = tuple(float(x) for x in attrs["energy_range"])
    return attrs


def load_model(path, backend):
    """A model of the file's type (attribute ``model``: "calogan", "wgan-gp", "vae", "lagan") built on
    ``backend`` (a Backend) from a model file or a training checkpoint, weights and BatchNorm statistics
    restored; the arrays are converted to the backend's dtype, so a model trained on any backend loads on
    every other."""
    from calosim.models.registry import get_model_type, networks_of

    header = read_model_header(path)
    kind = get_model_type(header["model"])
    model = kind.build(header["config"], header["geometry"], backend, np.random.default_rng(0),
                       particle=str(header.get("particle", "unknown")), energy_range=header["energy_range"])
    with h5py.File(path, "r") as f:
        for name, net in networks_of(model).items():
            if name not in f:
                raise DataError(f"{path}: model file has no /{name} group")
            set_model_arrays(net, _read_group(f[name]), source=f"{path}:/{name}")
    model.attrs = {k: v for k, v in header.items() if k not in ("config", "geometry")}
    return model


# --------------------------------------------------------------------------- training checkpoints
def save_checkpoint(path, model, optimizers: dict, trainer_state: dict, **extra) -> Path:
    """Model, optimiser states ({"generator": Adam, "discriminator": Adam, ...}: the trainer's ``optimizers``)
    and the trainer's JSON-able state."""

    def fill(f):
        _write_model(f, model, extra)
        group = f.create_group("optimizer")
        for name, opt in optimizers.items():
            _write_group(group.create_group(name), opt.state_dict())
        f.attrs["trainer_state"] = json.dumps(trainer_state)

    return atomic_h5(path, fill)


def load_checkpoint(path, model, optimizers: dict) -> dict:
    """Restore ``model`` and ``optimizers`` in place from a checkpoint; returns the trainer state."""
    from calosim.models.registry import model_type_of, networks_of

    path = Path(path)
    header = read_model_header(path)
    if (header["model"] != model_type_of(model) or header["config"].replace(epochs=model.config.epochs) != model.config
            or header["geometry"] != model.geometry):
        raise TrainingError(f"{path}: the checkpoint was written for another model type, config or geometry than "
                            "this run's (only the number of epochs may change)")
    with h5py.File(path, "r") as f:
        for name, net in networks_of(model).items():
            set_model_arrays(net, _read_group(f[name]), source=f"{path}:/{name}")
        for name, opt in optimizers.items():
            try:
                opt.load_state_dict(_read_group(f["optimizer"][name]))
            except (KeyError, ValueError) as exc:
                raise TrainingError(f"{path}: optimiser state {name!r} does not match the run: {exc}") from None
        return json.loads(f.attrs["trainer_state"])
