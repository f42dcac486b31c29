"""Train (or resume) a run of a registered model type other than CaloGAN: wgan-gp, vae, lagan.

The run directory, validation score, checkpoints, resume and NaN handling are those of calosim.train (see its
docstring): log.jsonl, run.json, checkpoint.h5 (model file + /optimizer/<name> Adam states + trainer_state
JSON with the RNG states and the trainer's counters), last.h5 and best.h5 (model files, attribute ``model`` =
the type). The type's trainer does the steps (calosim.models.registry); one call of ``train_step`` per batch.

With ``energy_schedule`` set in a wgan-gp config and a training file of at most 50 distinct incident
energies, the training rows are held in memory and every epoch visits the energy points in increasing order
(calosim.models.wgan_gp.energy_point_batches).

A config with ``n_classes`` 2 (lagan) needs a file with labels (the jet-image layout, calosim.data.formats):
the training rows and their labels are then held in memory and shuffled together every epoch; the trainer
gets (layers, energy, labels).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import h5py
import numpy as np

from calosim.backends import get_backend
from calosim.checkpoint import _read_group, _write_group, atomic_h5, set_model_arrays
from calosim.data.dataset import ShowerDataset, split
from calosim.data.formats import read_labels, read_showers
from calosim.errors import ConfigError, DataError, TrainingError
from calosim.models import registry
from calosim.models.base import LossNotFinite
from calosim.models.wgan_gp import energy_point_batches

CHECKPOINT, LAST, BEST, LOG, RUN_JSON = "checkpoint.h5", "last.h5", "best.h5", "log.jsonl", "run.json"


def save_checkpoint(path, model, optimizers: dict, trainer_state: dict, **extra) -> Path:
    def fill(f):
        registry._write_model(f, model, extra)
        group = f.create_group("optimizer")
        for name, opt in optimizers.items():
            _write_group(group.create_group(name), opt.state_dict())
        f.attrs["trainer_state"] = json.dumps(trainer_state)

    return atomic_h5(path, fill)


def load_checkpoint(path, model, optimizers: dict) -> dict:
    header = registry.read_header(path)
    if (header["model"] != model.model_type or header["config"].replace(epochs=model.config.epochs) != model.config
            or header["geometry"] != model.geometry):
        raise TrainingError(f"{path}: the checkpoint was written for another model type, config or geometry than "
                            "this run's (only the number of epochs may change)")
    with h5py.File(path, "r") as f:
        for name, net in registry.networks_of(model).items():
            set_model_arrays(net, _read_group(f[name]), source=f"{path}:/{name}")
        for name, opt in optimizers.items():
            try:
                opt.load_state_dict(_read_group(f["optimizer"][name]))
            except (KeyError, ValueError) as exc:
                raise TrainingError(f"{path}: optimiser state {name!r} does not match the run: {exc}") from None
        return json.loads(f.attrs["trainer_state"])


def generate_arrays(model, energy_gev: np.ndarray, rng: np.random.Generator, batch_size: int = 1000):
    """Showers for the given incident energies (GeV) in inference mode: per-layer (N, R, C) float32 MeV."""
    be = model.backend
    parts = []
    for start in range(0, len(energy_gev), batch_size):
        e = np.asarray(energy_gev[start:start + batch_size], np.float64)
        z = model.sample_latent(rng, len(e))
        labels = model.sample_labels(rng, len(e))
        images = model.generate(be.asarray(z), be.asarray(e), labels=labels, training=False)
        parts.append([be.to_numpy(x).astype(np.float32) for x in images])
    return [np.concatenate([p[i] for p in parts]) for i in range(model.geometry.n_layers)]


def _dropout_layers(model):
    return [layer for net in registry.networks_of(model).values() for layer in net.walk() if hasattr(layer, "rng")]


def train_model_type(model_type: str, out, data=None, backend: str = "numba", config: str | None = None,
                     config_file=None, epochs: int | None = None, batch_size: int | None = None, seed: int = 0,
                     resume: bool = False, validation_fraction: float = 0.2, dtype: str = "float32",
                     chunk_size: int = 10_000, reporter=None):
    """Train (or resume) a ``model_type`` run in ``out``; the arguments are those of calosim.train.train."""
    from calosim.data.bundled import bundled_path
    from calosim.train import (
        Reporter,
        TrainResult,
        _energy_range,
        _read_log,
        fast_observables,
        validation_score,
    )

    kind = registry.get_model_type(model_type)
    if kind.trainer_class is None:
        raise ConfigError(f"model type {model_type!r} is trained by calosim.train.train")
    reporter = reporter or Reporter()
    run_dir = Path(out)
    data_path = Path(data) if data is not None else bundled_path("eplus")
    cfg = kind.get_config(config, config_file, epochs=epochs, batch_size=batch_size)
    ckpt_path = run_dir / CHECKPOINT
    if ckpt_path.exists() and not resume:
        raise TrainingError(f"{run_dir} already holds a run ({CHECKPOINT}); pass --resume to continue it, or "
                            "choose another --out")
    if resume and ckpt_path.exists():
        header = registry.read_header(ckpt_path)
        if header["model"] != model_type or header["config"].replace(epochs=cfg.epochs) != cfg:
            raise TrainingError(f"{ckpt_path}: the run was started with another model type or config; resume with "
                                "the same --model-type, --config, --config-file and --batch-size (only --epochs "
                                "may change)")
    elif resume:
        reporter.message(f"no {CHECKPOINT} in {run_dir}: starting the run from scratch")
    run_dir.mkdir(parents=True, exist_ok=True)

    train_rows, val_rows = split(data_path, validation_fraction)
    if len(train_rows) < cfg.batch_size:
        raise DataError(f"{data_path}: {len(train_rows)} training showers, fewer than one batch of {cfg.batch_size}")
    seeds = np.random.SeedSequence(seed).spawn(4)
    init_rng, noise_rng, shuffle_rng = (np.random.default_rng(s) for s in seeds[:3])
    dataset = ShowerDataset(data_path, chunk_size=chunk_size, batch_size=cfg.batch_size, shuffle=True,
                            rng=shuffle_rng, rows=train_rows, drop_last=True, arrays=True)
    geometry = dataset.geometry
    energy_range = cfg.energy_range or _energy_range(data_path, train_rows)
    be = get_backend(backend, dtype)
    model = kind.build(cfg, geometry, be, init_rng, particle=dataset.particle, energy_range=energy_range)
    trainer = kind.trainer_class(model, noise_rng)
    dropouts = _dropout_layers(model)
    in_memory = labels = None
    if getattr(cfg, "n_classes", 1) > 1:
        labels = read_labels(data_path, train_rows.start, train_rows.stop)
        if labels is None:
            raise DataError(f"{data_path}: config {cfg.name!r} has n_classes {cfg.n_classes} but the file holds no "
                            "class labels (a jet-image file with image and signal / label / y)")
        if labels.max(initial=0) >= cfg.n_classes:
            raise DataError(f"{data_path}: labels up to {int(labels.max())} for n_classes {cfg.n_classes}")
        in_memory = dataset.load()
    elif getattr(cfg, "energy_schedule", False):
        in_memory = dataset.load()
        if energy_point_batches(in_memory.energy, cfg.batch_size, np.random.default_rng(0)) is None:
            reporter.message("energy_schedule: the training energies are not discrete; using the shuffled order")
            in_memory = None

    epochs_done, best_score, best_epoch = 0, None, None
    if resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path, model, trainer.optimizers)
        epochs_done, best_score, best_epoch = state["epochs_done"], state["best_score"], state["best_epoch"]
        noise_rng.bit_generator.state = state["rng"]["noise"]
        shuffle_rng.bit_generator.state = state["rng"]["shuffle"]
        for layer, s in zip(dropouts, state["rng"]["dropout"]):
            layer.rng.bit_generator.state = s
        trainer.load_state(state.get("trainer", {}))
        reporter.message(f"resuming {run_dir} after epoch {epochs_done}")
    history = [r for r in _read_log(run_dir / LOG) if r.get("epoch", 0) <= epochs_done]
    (run_dir / LOG).write_text("".join(json.dumps(r) + "\n" for r in history))
    options = {"model_type": model_type, "data": str(data_path), "backend": backend, "dtype": dtype,
               "config": cfg.to_dict(), "seed": seed, "validation_fraction": validation_fraction,
               "train_rows": [train_rows.start, train_rows.stop], "validation_rows": [val_rows.start, val_rows.stop],
               "energy_range": list(energy_range), "geometry": geometry.to_dict(), "particle": dataset.particle}
    (run_dir / RUN_JSON).write_text(json.dumps(options, indent=2) + "\n")
    validation = read_showers(data_path, val_rows.start, val_rows.stop) if len(val_rows) else None
    val_ref = fast_observables(validation.layers, validation.energy) if validation is not None else None

    def batches():
        if in_memory is None:
            yield from dataset
            return
        if labels is not None:
            order = shuffle_rng.permutation(len(labels))
            for b in range(0, len(order) - cfg.batch_size + 1, cfg.batch_size):
                rows = order[b:b + cfg.batch_size]
                yield [x[rows] for x in in_memory.layers], in_memory.energy[rows], labels[rows]
            return
        for rows in energy_point_batches(in_memory.energy, cfg.batch_size, shuffle_rng):
            yield [x[rows] for x in in_memory.layers], in_memory.energy[rows]

    n_batches = dataset.n_batches
    for epoch in range(epochs_done + 1, cfg.epochs + 1):
        t0 = time.perf_counter()
        reporter.epoch_start(epoch, cfg.epochs, n_batches)
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        n_steps = 0
        for batch in batches():
            try:
                losses = trainer.train_step(*batch)
            except LossNotFinite as exc:
                where = (f"{ckpt_path} (after epoch {epochs_done}) is intact: resume from it with lower learning "
                         "rates (--config-file)") if epochs_done else "no checkpoint was written yet"
                raise TrainingError(f"training stopped at epoch {epoch}, step {n_steps + 1}: {exc}; {where}") from None
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v
                counts[k] = counts.get(k, 0) + 1
            n_steps += 1
            reporter.step(losses)
        bad = [p.name for p in model.parameters() if not bool(be.xp.isfinite(p.value).all())]
        if bad:
            raise TrainingError(f"training stopped at epoch {epoch}: non-finite weights in {bad[0]}; "
                                f"{ckpt_path} (after epoch {epochs_done}) is intact")
        record = {"epoch": epoch, "steps": n_steps, **{k: sums[k] / counts[k] for k in sums}}
        if val_ref is not None:
            gen_layers = generate_arrays(model, validation.energy, np.random.default_rng(seeds[3]))
            record.update(validation_score(fast_observables(gen_layers, validation.energy), val_ref))
        record["seconds"] = time.perf_counter() - t0
        score = record.get("score")
        if score is None:
            best_epoch = epoch
        elif best_score is None or score < best_score:
            best_score, best_epoch = score, epoch
        record["best_epoch"] = best_epoch
        info = {"epoch": epoch, "seed": seed, "backend": backend, "validation_score": -1.0 if score is None else score}
        registry.save(run_dir / LAST, model, **info)
        if best_epoch == epoch:
            registry.save(run_dir / BEST, model, **info)
        with open(run_dir / LOG, "a") as log:
            log.write(json.dumps(record) + "\n")
        epochs_done = epoch
        trainer_state = {"epochs_done": epochs_done, "best_score": best_score, "best_epoch": best_epoch,
                         "rng": {"noise": noise_rng.bit_generator.state, "shuffle": shuffle_rng.bit_generator.state,
                                 "dropout": [layer.rng.bit_generator.state for layer in dropouts]},
                         "trainer": trainer.state(), "options": options}
        save_checkpoint(ckpt_path, model, trainer.optimizers, trainer_state, **info)
        history.append(record)
        reporter.epoch_end(record)
    if epochs_done == 0 and not ckpt_path.exists():
        raise ConfigError("epochs must be >= 1 for a new run")
    return TrainResult(run_dir, epochs_done, best_epoch, best_score, history)
