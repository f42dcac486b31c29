"""The training loop of every model type: epochs, progress, validation, best / last model files, checkpoints,
resume and the NaN stop. It knows no model type: the model's trainer (calosim.models.base.Trainer) does the
steps.

A run directory holds:
    log.jsonl        one JSON line per epoch: mean losses, validation metrics and score, seconds
    run.json         the options and the effective config of the run (and the values fitted from the data)
    checkpoint.h5    after every epoch, atomically: weights, the trainer's Adam states, all RNG states (noise,
                     data shuffle, Dropout layers), the trainer's state, epochs done, best score
                     (calosim.training.checkpoint)
    last.h5, best.h5 model files of the last epoch and of the epoch with the lowest validation score

Resuming (resume=True) restores checkpoint.h5 and continues with the next epoch; because every source of
randomness is restored, the weights equal those of an uninterrupted run with the same seed on the same backend.
A NaN or infinite loss stops the run with a TrainingError before the bad step is applied; checkpoint.h5 then
still holds the last good epoch.

Validation: the last ``validation_fraction`` of the file's rows are never trained on; after each epoch the
model's samples of them are scored (calosim.training.validation). Before validation the loop calls the
trainer's ``end_epoch()`` (CaloGAN: precise BN), before each epoch ``start_epoch()`` (learning-rate schedules).

Data-parallel (``parallel``, a calosim.distributed.mpi.DataParallel: ``mpiexec -n K calosim train
--distributed``): every rank runs this loop on its slice of each global batch, with the noise and Dropout streams
sliced and the gradients averaged as that module describes; rank 0 alone writes the run directory (other ranks
only read it, to resume), validation runs on rank 0, and the logged losses are means over the ranks.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from calosim.atomic import sweep_stale_temporaries
from calosim.backends import get_backend
from calosim.data.dataset import ShowerDataset, energy_point_batches, layer_energy_sample, mirror_showers, split
from calosim.data.formats import CALOGAN, JET_IMAGE, detect_format, read_labels, read_showers
from calosim.errors import ConfigError, DataError, TrainingError
from calosim.geometry import Geometry
from calosim.layers import BatchNorm, Dropout
from calosim.models import registry
from calosim.models.base import LossNotFinite
from calosim.models.energy import LayerEnergyConfig, LayerEnergyTrainer
from calosim.models.files import read_model_header, save_model
from calosim.models.units import layer_sums
from calosim.pretrained import pretrained_path
from calosim.training.calibrate import calibrate_run
from calosim.training.checkpoint import load_checkpoint, save_checkpoint
from calosim.training.energies import training_energies
from calosim.training.rundir import check_resume, file_sha256, run_lock
from calosim.training.validation import sample_arrays, validation_observables, validation_score

CHECKPOINT = "checkpoint.h5"
LAST = "last.h5"
BEST = "best.h5"
LOG = "log.jsonl"
RUN_JSON = "run.json"


def shower_file_format(path) -> str:
    """The layout generated showers of a model trained on ``path`` are written in by default: the file's own
    (a jet-image file's showers are written in the CaloGAN layout)."""
    fmt = detect_format(path)
    return CALOGAN if fmt == JET_IMAGE else fmt


@dataclass
class TrainResult:
    run_dir: Path
    epochs_done: int
    best_epoch: int | None
    best_score: float | None
    history: list[dict] = field(default_factory=list)


class Reporter:
    """Progress hooks (the CLI draws a progress bar); the default does nothing."""

    def epoch_start(self, epoch: int, epochs: int, n_batches: int) -> None: ...

    def step(self, losses: dict[str, float]) -> None: ...

    def epoch_end(self, record: dict) -> None: ...

    def message(self, text: str) -> None: ...


def resolve_model_path(model) -> Path:
    """A model file, a run directory (its best.h5, else last.h5), or the name of a shipped pretrained model
    (calosim.pretrained; a file or directory of that name comes first)."""
    path = Path(model)
    if path.is_dir():
        for name in (BEST, LAST):
            if (path / name).is_file():
                return path / name
        raise DataError(f"{path}: run directory without {BEST} or {LAST} (has training finished an epoch?)")
    if path.is_file():
        return path
    return pretrained_path(str(model))  # its error lists the pretrained names


def _init_rng(seed: int) -> np.random.Generator:
    """The generator the run's initial weights are drawn from (the first of the run's four seed streams)."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(4)[0])


def initial_model(run_dir, backend: str = "numba"):
    """The model of a run as it was before its first step: rebuilt from the run's run.json (model type, config,
    geometry, particle, energy range) with the weights its seed draws, the same as the run started from. The
    untrained baseline against which an evaluation shows what training bought."""
    path = Path(run_dir) / RUN_JSON
    if not path.is_file():
        raise DataError(f"{run_dir}: not a run directory ({RUN_JSON} is missing)")
    options = json.loads(path.read_text())
    kind = registry.get_model_type(options["model_type"])
    config, fitted = kind.split_stored_config(options["config"])
    fitted.update({k: np.asarray(v, np.float64) for k, v in options.get("fitted", {}).items()})
    be = get_backend(backend, options.get("dtype", "float32"))
    rng = _init_rng(int(options["seed"]))
    model = kind.build(kind.config_from_dict(config), Geometry.from_dict(options["geometry"]), be, rng,
                       particle=options["particle"], energy_range=tuple(options["energy_range"]),
                       fitted=fitted or None)
    model.fitted.update(fitted)
    if options.get("energy_model"):
        model.attach_energy_model(LayerEnergyConfig.from_dict(options["energy_model"]), rng)
    model.attrs = {"data_format": options.get("data_format", CALOGAN)}
    return model


def _rng_state(rng: np.random.Generator) -> dict:
    return rng.bit_generator.state


def _set_rng_state(rng: np.random.Generator, state: dict) -> None:
    rng.bit_generator.state = state


def _dropout_layers(model):
    return [layer for layer in model.walk() if isinstance(layer, Dropout)]


def _write_text(path: Path, text: str) -> None:
    """Replace a small text file atomically (a kill leaves the old or the new one, never half of it)."""
    tmp = path.with_name(f".{path.name}.pid{os.getpid()}.text.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _read_log(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _batch_source(model, data_path, train_rows: range, dataset: ShowerDataset, shuffle_rng, reporter):
    """The batches of one epoch, as a function of no arguments: the dataset's shuffled chunks, or (a two-class
    model, or a model asking for the energy-point order on discrete energies) the training rows held in
    memory."""
    cfg = model.config
    if model.n_classes > 1:
        labels = read_labels(data_path, train_rows.start, train_rows.stop)
        if labels is None:
            raise DataError(f"{data_path}: config {cfg.name!r} has n_classes {model.n_classes} but the file holds no "
                            "class labels (a jet-image file with image and signal / label / y)")
        if dataset.keep is not None:
            labels = labels[dataset.keep[train_rows.start:train_rows.stop]]
        if labels.max(initial=0) >= model.n_classes:
            raise DataError(f"{data_path}: labels up to {int(labels.max())} for n_classes {model.n_classes}")
        rows_in_memory = dataset.load()

        def labelled():
            order = shuffle_rng.permutation(len(labels))
            for b in range(0, len(order) - cfg.batch_size + 1, cfg.batch_size):
                rows = order[b:b + cfg.batch_size]
                yield [x[rows] for x in rows_in_memory.layers], rows_in_memory.energy[rows], labels[rows]

        return labelled
    if model.batch_order == "energy_points":
        rows_in_memory = dataset.load()
        if energy_point_batches(rows_in_memory.energy, cfg.batch_size, np.random.default_rng(0)) is not None:
            def by_energy_point():
                for rows in energy_point_batches(rows_in_memory.energy, cfg.batch_size, shuffle_rng):
                    yield [x[rows] for x in rows_in_memory.layers], rows_in_memory.energy[rows]

            return by_energy_point
        reporter.message("energy-point order: the training energies are not discrete; using the shuffled order")
    return lambda: iter(dataset)


def train(out, data=None, backend: str = "numba", config: str | None = None, config_file=None,
          epochs: int | None = None, batch_size: int | None = None, seed: int = 0, resume: bool = False,
          validation_fraction: float = 0.2, dtype: str = "float32", chunk_size: int = 10_000,
          reporter: Reporter | None = None, model_type: str = "calogan", energy_range=None,
          drop_energy_outliers: bool = False, energy_model: bool = False, mirror: bool = False, parallel=None,
          sync_batchnorm: bool = False, mirror_samples: bool | None = None,
          calibrate_cells: bool = True) -> TrainResult:
    """Train (or resume) a run in directory ``out``; see the module docstring.

    model_type: a type of calosim.models.registry; its trainer (the model's ``trainer()``) does the steps, one
    call of ``train_step`` per batch. config: a configuration name of the model type (default: its default).

    A model whose ``batch_order`` is "energy_points", on a training file of at most 50 distinct incident
    energies, has the training rows held in memory and every epoch visits the energy points in increasing order
    (calosim.data.dataset.energy_point_batches). A two-class model (``n_classes`` 2) needs a file with labels
    (calosim.data.formats): the training rows and their labels are then held in memory and shuffled together
    every epoch; the trainer gets (layers, energy, labels).

    energy_model: energy factorisation for any model type: a conditional model of the layer energies given
    E_inc (calosim.models.energy) trains beside the model, one step per batch (loss e_nll), and every sampled
    layer (validation, generate) is rescaled to its energies. mirror: reflect each training shower at random along
    the axes the geometry is mirror symmetric under (Geometry.mirror_axes); off by default (on CaloGAN small it
    did not help: the README job's separations were no better on two seeds and FPD / KPD worse). mirror_samples:
    the model reflects every shower it samples (validation, generate) at random along those axes
    (ShowerModel.sampling_mirror_axes); None (default): on where the geometry is mirror symmetric. On the shipped e+
    model it took the low-level classifier's AUC from 0.986 to 0.763 (3,000 validation showers): the decoder's
    mean shape leans 1-3% to one side in the central cells, Geant4's does not. calibrate_cells: when the run ends,
    fit the calibration (calosim.models.calibration.fit_model) of best.h5 and last.h5 to the first 10,000 training
    showers; on the shipped e+ model the cell factors took the lateral width of layer 0 from separation power 0.14
    to 0.003, and the profile spread then the mean separation from 0.019 to 0.006 (3,000 validation showers).

    data: a CaloGAN or CaloChallenge shower file (MeV cells, GeV energies); default the bundled Geant4 e+.
    epochs, batch_size, energy_range (GeV, the declared conditioning range): override the config's; everything
    else comes from ``config`` and ``config_file``. Incident energies are checked and the conditioning range
    found as calosim.training.energies says; ``drop_energy_outliers`` trains without the showers outside it.

    The run directory is locked while the run works in it (calosim.training.rundir); a resume must match the
    run's run.json. A run that fails before its first checkpoint removes the directory it created.

    parallel: this rank of a data-parallel job (the module docstring); sync_batchnorm: BatchNorm statistics of the
    global batch instead of each rank's slice.
    """
    from calosim.data.bundled import bundled_path

    kind = registry.get_model_type(model_type)
    reporter = reporter or Reporter()
    run_dir = Path(out)
    data_path = Path(data) if data is not None else bundled_path("eplus")
    cfg = kind.get_config(config, config_file, epochs=epochs, batch_size=batch_size,
                          energy_range=tuple(energy_range) if energy_range is not None else None)
    train_rows, val_rows = split(data_path, validation_fraction)
    if sync_batchnorm and parallel is None:
        raise ConfigError("--sync-batchnorm synchronises BatchNorm over the ranks of --distributed; give that too")
    run = (run_dir, kind, cfg, data_path, train_rows, val_rows, backend, seed, resume, validation_fraction, dtype,
           chunk_size, reporter, model_type, drop_energy_outliers, energy_model, mirror, parallel, sync_batchnorm,
           mirror_samples)
    if parallel is not None and not parallel.is_root:  # rank 0 owns the run directory; the others only read it
        return _train_locked(*run)
    created = not run_dir.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with run_lock(run_dir):
            sweep_stale_temporaries(run_dir)
            result = _train_locked(*run)
            if calibrate_cells:
                calibrate_run(run_dir, data_path, train_rows, seed, backend, reporter)
            return result
    except BaseException:
        if created and not (run_dir / CHECKPOINT).exists():  # nothing worth keeping: leave no empty run behind
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _train_locked(run_dir: Path, kind, cfg, data_path: Path, train_rows: range, val_rows: range, backend: str,
                  seed: int, resume: bool, validation_fraction: float, dtype: str, chunk_size: int,
                  reporter: Reporter, model_type: str, drop_energy_outliers: bool,
                  energy_model: bool, mirror: bool, parallel=None, sync_batchnorm: bool = False,
                  mirror_samples: bool | None = None) -> TrainResult:
    """The run, once ``run_dir`` is locked (see :func:`train`; ranks other than 0 of a data-parallel job come here
    without the lock and write nothing)."""
    writes = parallel is None or parallel.is_root
    ckpt_path = run_dir / CHECKPOINT
    if ckpt_path.exists() and not resume:
        raise TrainingError(f"{run_dir} already holds a run ({CHECKPOINT}); pass --resume to continue it, or "
                            "choose another --out")
    if resume and ckpt_path.exists():
        header = read_model_header(ckpt_path)
        if (header["model"] != model_type or header["config"].replace(epochs=cfg.epochs) != cfg
                or ("energy_model" in header) != energy_model):
            raise TrainingError(f"{ckpt_path}: the run was started with another config or model type; resume with "
                                "the same --model-type, --config, --config-file, --batch-size and --energy-model "
                                "(only --epochs may change)")
    elif resume:
        reporter.message(f"no {CHECKPOINT} in {run_dir}: starting the run from scratch")

    if len(train_rows) < cfg.batch_size:
        raise DataError(f"{data_path}: {len(train_rows)} training showers, fewer than one batch of {cfg.batch_size}")
    rank_rows = parallel.local_rows(cfg.batch_size) if parallel is not None else None
    seeds = np.random.SeedSequence(seed).spawn(5)  # the fifth: mirror reflections (the first four as before)
    init_rng, noise_rng, shuffle_rng, mirror_rng = _init_rng(seed), *(np.random.default_rng(s) for s in
                                                                      (seeds[1], seeds[2], seeds[4]))
    validation_seed = seeds[3]
    data_format = shower_file_format(data_path)
    energies = training_energies(data_path, train_rows, val_rows.stop, cfg.energy_range, drop_energy_outliers)
    if energies.dropped:
        reporter.message(f"dropped {energies.dropped} shower(s) with incident energies outside "
                         f"[{energies.energy_range[0]:g}, {energies.energy_range[1]:g}] GeV")
    dataset = ShowerDataset(data_path, chunk_size=chunk_size, batch_size=cfg.batch_size, shuffle=True,
                            rng=shuffle_rng, rows=train_rows, drop_last=True, arrays=True, keep=energies.keep)
    if len(dataset) < cfg.batch_size:
        raise DataError(f"{data_path}: {len(dataset)} training showers, fewer than one batch of {cfg.batch_size}")
    geometry = dataset.geometry
    mirror_axes = geometry.mirror_axes() if mirror else ()
    if mirror and not mirror_axes:
        raise ConfigError(f"--mirror: the geometry {geometry.name!r} has no mirror symmetry")
    energy_range = energies.energy_range
    be = get_backend(backend, dtype)
    if parallel is not None:
        parallel.attach_backend(be)
    fitted = kind.fit(cfg, data_path, train_rows)
    model = kind.build(cfg, geometry, be, init_rng, particle=dataset.particle, energy_range=energy_range,
                       fitted=fitted or None)
    if mirror_samples is None and resume and (run_dir / RUN_JSON).is_file():  # a resume keeps the run's choice
        try:
            stored = json.loads((run_dir / RUN_JSON).read_text()).get("sampling_mirror_axes")
        except (OSError, ValueError, AttributeError):  # check_resume reports an unreadable run.json
            stored = None
        mirror_samples = None if stored is None else bool(stored)
    if mirror_samples or mirror_samples is None:
        if mirror_samples and not geometry.mirror_axes():
            raise ConfigError(f"--mirror-samples: the geometry {geometry.name!r} has no mirror symmetry")
        model.set_sampling_mirror_axes(geometry.mirror_axes())
    sliced_streams = []  # the rank's view of the noise and Dropout streams (data-parallel only)
    if parallel is not None:
        from calosim.distributed.mpi import RankSlicedGenerator

        sliced_streams.append(RankSlicedGenerator(noise_rng, rank_rows, cfg.batch_size))
    trainer = model.trainer(sliced_streams[0] if sliced_streams else noise_rng)
    optimizers, loss_names, energy_trainer = trainer.optimizers, trainer.loss_names, None
    if energy_model:  # drawn after the type's weights: those stay what they are without it
        model.attach_energy_model(LayerEnergyConfig(), init_rng)
        layer_energies, incident = layer_energy_sample(data_path, train_rows)
        if energies.keep is not None:
            kept = energies.keep[train_rows.start:train_rows.start + len(incident)]
            layer_energies, incident = layer_energies[kept], incident[kept]
        model.fit_energy_scales(layer_energies, incident)
        energy_trainer = LayerEnergyTrainer(model.energy_model)
        optimizers = {**optimizers, "energy": energy_trainer.optimizer}
        loss_names = loss_names + energy_trainer.loss_names
    dropouts = _dropout_layers(model)
    if parallel is not None:
        for layer in dropouts:
            layer.rng = RankSlicedGenerator(layer.rng, rank_rows, cfg.batch_size)
            sliced_streams.append(layer.rng)
        for opt in optimizers.values():
            opt.gradient_reducer = parallel.average_gradients
        if sync_batchnorm:
            for layer in model.walk():
                if isinstance(layer, BatchNorm):
                    layer.statistics_reducer = parallel
    batches = _batch_source(model, data_path, train_rows, dataset, shuffle_rng, reporter)

    epochs_done, best_score, best_epoch = 0, None, None
    if resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path, model, optimizers)
        epochs_done, best_score, best_epoch = state["epochs_done"], state["best_score"], state["best_epoch"]
        _set_rng_state(noise_rng, state["rng"]["noise"])
        _set_rng_state(shuffle_rng, state["rng"]["shuffle"])
        if "mirror" in state["rng"]:
            _set_rng_state(mirror_rng, state["rng"]["mirror"])
        for layer, s in zip(dropouts, state["rng"]["dropout"]):
            _set_rng_state(layer.rng, s)
        trainer.load_state(state.get("trainer", {}))
        reporter.message(f"resuming {run_dir} after epoch {epochs_done}")
    options = {"model_type": model_type, "data": str(data_path), "backend": backend, "dtype": dtype,
               "config": cfg.to_dict(), "seed": seed, "validation_fraction": validation_fraction,
               "train_rows": [train_rows.start, train_rows.stop], "validation_rows": [val_rows.start, val_rows.stop],
               "energy_range": list(energy_range), "geometry": geometry.to_dict(), "particle": dataset.particle,
               "data_format": data_format, "fitted": {k: v.tolist() for k, v in model.fitted.items()},
               "data_sha256": file_sha256(data_path), "energy_outliers_dropped": energies.dropped,
               "energy_model": model.energy_model.config.to_dict() if model.energy_model is not None else None,
               "mirror_axes": list(mirror_axes), "sampling_mirror_axes": list(model.sampling_mirror_axes)}
    if epochs_done:  # a resume: the same run or nothing
        if (run_dir / RUN_JSON).is_file():
            check_resume(run_dir / RUN_JSON, options)
    elif writes:  # written once, when the run starts
        _write_text(run_dir / RUN_JSON, json.dumps(options, indent=2) + "\n")
    history = [r for r in _read_log(run_dir / LOG) if r.get("epoch", 0) <= epochs_done]
    if writes:
        _write_text(run_dir / LOG, "".join(json.dumps(r) + "\n" for r in history))

    validation = read_showers(data_path, val_rows.start, val_rows.stop) if len(val_rows) and writes else None
    if validation is not None and energies.keep is not None:
        validation = validation.subset(energies.keep[val_rows.start:val_rows.stop])
    val_ref = (validation_observables(validation.layers, validation.energy, geometry) if validation is not None
               else None)

    for epoch in range(epochs_done + 1, cfg.epochs + 1):
        t0 = time.perf_counter()
        reporter.epoch_start(epoch, cfg.epochs, dataset.n_batches)
        trainer.start_epoch(epoch, cfg.epochs)
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        n_steps = 0
        for batch in batches():
            try:
                if mirror_axes:
                    batch = (mirror_showers(batch[0], mirror_rng, mirror_axes), *batch[1:])
                if rank_rows is not None:  # the global batch was read (and mirrored) as one process does
                    batch = ([x[rank_rows] for x in batch[0]], *(y[rank_rows] for y in batch[1:]))
                losses = trainer.train_step(*batch)
                if energy_trainer is not None:
                    losses.update(energy_trainer.train_step(layer_sums(batch[0], len(batch[1])), batch[1]))
            except LossNotFinite as exc:
                where = (f"{ckpt_path} (after epoch {epochs_done}) is intact: resume from it with lower learning "
                         "rates (--config-file)") if epochs_done else "no checkpoint was written yet"
                raise TrainingError(f"training stopped at epoch {epoch}, step {n_steps + 1}: {exc}; {where}") from None
            undeclared = set(losses) - set(loss_names)
            if undeclared:  # the progress bar and log.jsonl rely on the declared names
                raise TrainingError(f"{type(trainer).__name__} reported undeclared losses {sorted(undeclared)}")
            for k, v in losses.items():  # a trainer may report a loss on some steps only (wgan-gp's g_loss)
                sums[k] = sums.get(k, 0.0) + v
                counts[k] = counts.get(k, 0) + 1
            n_steps += 1
            reporter.step(losses)
        bad = [p.name for p in model.parameters() if not bool(be.xp.isfinite(p.value).all())]
        if bad:
            raise TrainingError(f"training stopped at epoch {epoch}: non-finite weights in {bad[0]}; "
                                f"{ckpt_path} (after epoch {epochs_done}) is intact")
        for stream in sliced_streams:  # precise BN draws whole global batches on every rank, as one process does
            stream.enabled = False
        trainer.end_epoch()
        for stream in sliced_streams:
            stream.enabled = True
        if parallel is not None:  # every rank reports the same losses (step counts agree): their means
            sums = parallel.mean_over_ranks(sums)
        means = {k: sums[k] / counts[k] for k in loss_names if k in sums}  # in the declared order
        if not writes:
            epochs_done = epoch
            continue
        record = {"epoch": epoch, "steps": n_steps, **means}
        if val_ref is not None:
            gen_layers = sample_arrays(model, validation.energy, np.random.default_rng(validation_seed))
            record.update(validation_score(validation_observables(gen_layers, validation.energy, geometry), val_ref))
        record["seconds"] = time.perf_counter() - t0
        score = record.get("score")
        if score is None:  # no validation split: the last epoch is the best we know
            best_epoch = epoch
        elif best_score is None or score < best_score:
            best_score, best_epoch = score, epoch
        record["best_epoch"] = best_epoch
        info = {"epoch": epoch, "seed": seed, "backend": backend, "validation_score": -1.0 if score is None else score,
                "data_format": data_format}
        save_model(run_dir / LAST, model, **info)
        if best_epoch == epoch:
            save_model(run_dir / BEST, model, **info)
        with open(run_dir / LOG, "a") as log:
            log.write(json.dumps(record) + "\n")
        epochs_done = epoch
        trainer_state = {"epochs_done": epochs_done, "best_score": best_score, "best_epoch": best_epoch,
                         "rng": {"noise": _rng_state(noise_rng), "shuffle": _rng_state(shuffle_rng),
                                 "mirror": _rng_state(mirror_rng),
                                 "dropout": [_rng_state(layer.rng) for layer in dropouts]},
                         "trainer": trainer.state(), "options": options}
        save_checkpoint(ckpt_path, model, optimizers, trainer_state, **info)
        history.append(record)
        reporter.epoch_end(record)
    if epochs_done == 0 and not ckpt_path.exists():
        raise ConfigError("epochs must be >= 1 for a new run")
    if parallel is not None:
        parallel.barrier()  # every rank ends once rank 0 has written the last epoch
    return TrainResult(run_dir, epochs_done, best_epoch, best_score, history)
