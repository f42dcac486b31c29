"""Training checkpoints (RUN_DIR/checkpoint.h5): a model file (calosim.models.files) plus what resuming needs.

    /optimizer/<group>/{t, m/<name>, v/<name>}   Adam's step and moments, one group per entry of the
                                                 trainer's ``optimizers`` (e.g. generator, discriminator)
    attribute trainer_state   JSON: epochs done, RNG states (noise, data shuffle, every Dropout layer),
                              best validation score and epoch, the trainer's own state, the run's options
Written atomically after every epoch (calosim.atomic), so a killed run resumes from its last whole epoch.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py

from calosim.atomic import atomic_h5
from calosim.errors import TrainingError
from calosim.models.files import read_group, read_model_header, read_networks, write_group, write_model


def save_checkpoint(path, model, optimizers: dict, trainer_state: dict, **extra) -> Path:
    """Model, optimiser states ({"generator": Adam, ...}: the trainer's ``optimizers``) and the loop's
    JSON-able state."""
    path = Path(path)
    with atomic_h5(path, track_order=True) as f:
        write_model(f, model, extra, target=path)
        group = f.create_group("optimizer")
        for name, opt in optimizers.items():
            write_group(group.create_group(name), opt.state_dict())
        f.attrs["trainer_state"] = json.dumps(trainer_state)
    return path


def load_checkpoint(path, model, optimizers: dict) -> dict:
    """Restore ``model`` and ``optimizers`` in place from a checkpoint; returns the loop's state."""
    path = Path(path)
    header = read_model_header(path)
    if (header["model"] != model.model_type
            or header["config"].replace(epochs=model.config.epochs) != model.config
            or header["geometry"] != model.geometry):
        raise TrainingError(f"{path}: the checkpoint was written for another model type, config or geometry than "
                            "this run's (only the number of epochs may change)")
    with h5py.File(path, "r") as f:
        read_networks(f, model, path)
        for name, opt in optimizers.items():
            try:
                opt.load_state_dict(read_group(f["optimizer"][name]))
            except (KeyError, ValueError) as exc:
                raise TrainingError(f"{path}: optimiser state {name!r} does not match the run: {exc}") from None
        return json.loads(f.attrs["trainer_state"])
