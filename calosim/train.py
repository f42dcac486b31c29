"""Train a model of any registered type (calosim.models.registry: calogan, wgan-gp, vae, lagan) on a shower
file: one loop with validation, checkpoints and resume; the type's trainer does the steps.

CaloGAN's step (GANTrainer, the loop of reference section 4; batch B of real showers, cells MeV -> training
units MeV / image_scale = GeV):
    1. D on the all-real batch, target 1 (BCE with logits), one Adam step of D;
    2. D on an all-fake batch G(z, E) with E ~ U(energy_range) GeV, target 0, one Adam step of D;
    3. generator_steps times (2): fresh z and E, loss BCE(D(G(z, E)), 1) + energy_loss_weight * MAE(sum of
       the generated cells in GeV, E) [+ energy_ratio_loss_weight * mean |sum / E - r| with r the real batch's
       mean response sum / E, + g_sparsity_loss_weight * the per-shower occupancy term of
       calosim.losses.occupancy_loss, both off in the paper's config], one Adam step of G (D's weights and
       BatchNorm statistics are left alone). With the occupancy term on, the generator steps take E from the
       real batch (not fresh draws), so that fake i has real shower i, of the same energy, as its target.

A run directory holds:
    log.jsonl        one JSON line per epoch: mean losses, validation metrics and score, seconds
    run.json         the options and the effective config of the run
    checkpoint.h5    after every epoch, atomically: weights, the trainer's Adam states, all RNG states (noise,
                     data shuffle, Dropout layers), the trainer's state, epochs done, best score
                     (see calosim.checkpoint)
    last.h5, best.h5 model files of the last epoch and of the epoch with the lowest validation score

Resuming (resume=True) restores checkpoint.h5 and continues with the next epoch; because every source of
randomness is restored, the weights equal those of an uninterrupted run with the same seed on the same backend.
A NaN or infinite loss stops the run with a TrainingError before the bad step is applied; checkpoint.h5 then
still holds the last good epoch.

Validation: the last ``validation_fraction`` of the file's rows are never trained on. After each epoch the
generator (inference mode) makes one shower per validation shower, at its incident energy and with the same
latent vectors every epoch, and the score is the sum of the separation powers (10 equal-population bins) of
the observables of :func:`validation_observables` (in the CaloGAN geometry: the paper's 20 and E_tot/E_in),
plus 6 |<E_tot/E_in>_gen / <E_tot/E_in>_val - 1| (RESPONSE_WEIGHT: the mean response must be within a few
percent, so a 1% miss weighs as much as 0.06 of separation power). Lower is better. Before validation the loop
calls the trainer's ``end_epoch()`` if it has one (CaloGAN: precise BN, config bn_recalibration_batches).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from calosim.backends import get_backend
from calosim.checkpoint import load_checkpoint, read_model_header, save_checkpoint, save_model
from calosim.data.dataset import ShowerDataset, split
from calosim.data.formats import open_showers, read_labels, read_showers
from calosim.errors import ConfigError, DataError, TrainingError
from calosim.evaluate.metrics import separation_power
from calosim.evaluate.observables import calogan_observables, is_calogan
from calosim.layers import BatchNorm
from calosim.losses import bce_with_logits, mean_absolute_error, occupancy_loss
from calosim.models import registry
from calosim.models.base import LossNotFinite, check_finite, layer_sums
from calosim.models.calogan import CaloGAN
from calosim.models.registry import networks_of
from calosim.models.wgan_gp import energy_point_batches
from calosim.optim import Adam

CHECKPOINT = "checkpoint.h5"
LAST = "last.h5"
BEST = "best.h5"
LOG = "log.jsonl"
RUN_JSON = "run.json"


class GANTrainer:
    """The three kinds of step of one CaloGAN training iteration, on backend arrays.

    images are lists [(B, R_l, C_l, 1)] in training units, energies (B,) GeV.
    """

    def __init__(self, model: CaloGAN, rng: np.random.Generator):
        cfg = model.config
        self.model = model
        self.backend = be = model.backend
        self.rng = rng  # z and fake energies
        self.opt_g = Adam(model.generator.parameters(), cfg.lr_g, cfg.beta1, cfg.beta2, backend=be)
        self.opt_d = Adam(model.discriminator.parameters(), cfg.lr_d, cfg.beta1, cfg.beta2, backend=be)
        model.generator.set_latent_gradient(False)  # the steps never use dL/dz

    def sample_inputs(self, n: int):
        """Fresh z ~ N(0, 1) (n, Z) and E ~ U(energy_range) (n,) GeV, as backend arrays (E drawn first)."""
        lo, hi = self.model.energy_range
        energy = self.rng.uniform(lo, hi, size=n)
        z = self.rng.standard_normal((n, self.model.config.latent_dim))
        return self.backend.asarray(z), self.backend.asarray(energy)

    def d_loss(self, images, energy, target: float, training: bool = True):
        """(loss, dloss/dlogits) of D on one batch against a constant target."""
        xp = self.backend.xp
        logits = self.model.discriminator.forward([*images, energy], training)
        return bce_with_logits(logits, xp.full(logits.shape, target, dtype=logits.dtype), xp)

    def d_step(self, images, energy, target: float) -> float:
        """One Adam step of D on one batch (all real: target 1, all fake: target 0); returns the loss before it."""
        loss, dl = self.d_loss(images, energy, target)
        _check_finite(loss, "discriminator (real)" if target else "discriminator (fake)")
        discriminator = self.model.discriminator
        discriminator.set_input_gradient(False)  # only D's weight gradients are needed here
        try:
            discriminator.backward(dl)
        finally:
            discriminator.set_input_gradient(True)
        self.opt_d.step()
        return loss

    def g_loss(self, z, energy, target_response: float = 1.0):
        """Generator loss: (bce, energy MAE in GeV, images, dL/dlogits, d(weighted energy terms)/d(cell sums)) for
        inputs z, E; D's statistics are not updated. The energy terms: energy_loss_weight * MAE(sum, E) [+
        energy_ratio_loss_weight * mean |sum / E - target_response|, its value kept in ``last_ratio_mae``]."""
        model, xp = self.model, self.backend.xp
        images = model.generator.forward([z, energy], True)
        d = model.discriminator
        d.set_update_statistics(False)
        try:
            logits = d.forward([*images, energy], True)
        finally:
            d.set_update_statistics(True)
        bce, dl = bce_with_logits(logits, xp.ones(logits.shape, dtype=logits.dtype), xp)
        n = energy.shape[0]
        sums = sum(x.reshape(n, -1).sum(axis=1) for x in images)  # GeV
        mae, ds = mean_absolute_error(sums, energy, xp)
        ds = model.config.energy_loss_weight * ds
        self.last_ratio_mae = 0.0
        if model.config.energy_ratio_loss_weight > 0:  # weighs showers of a few GeV as much as those of 100
            self.last_ratio_mae, dr = mean_absolute_error(sums / energy, xp.full_like(sums, target_response), xp)
            ds = ds + model.config.energy_ratio_loss_weight * dr / energy
        return bce, mae, images, dl, ds

    def g_step(self, z, energy, occupancy_targets=None, target_response: float = 1.0) -> tuple[float, float, float]:
        """One Adam step of G; returns (bce, energy MAE in GeV, occupancy loss) before it. occupancy_targets:
        (B, L) per-shower fractions of non-zero cells of real showers at the energies ``energy``, for the
        optional occupancy term (config g_sparsity_loss_weight; its loss is 0.0 when off)."""
        cfg = self.model.config
        bce, mae, images, dl, ds = self.g_loss(z, energy, target_response)
        _check_finite(bce, "generator (adversarial)")
        _check_finite(mae, "generator (energy)")
        occupancy, d_pre = 0.0, None
        if cfg.g_sparsity_loss_weight > 0 and occupancy_targets is not None:
            occupancy, d_pre = occupancy_loss(self.model.generator.pre_activation, occupancy_targets,
                                              cfg.g_sparsity_tau, self.backend.xp)
            _check_finite(occupancy, "generator (occupancy)")
            d_pre = [cfg.g_sparsity_loss_weight * d for d in d_pre]
        discriminator = self.model.discriminator
        discriminator.set_param_grads(False)  # D is not updated in the G step: only dL/d(images) is needed
        try:
            d_images = discriminator.backward(dl)
        finally:
            discriminator.set_param_grads(True)
        d_energy = ds.reshape(-1, 1, 1, 1)
        self.model.generator.backward([dx + d_energy for dx in d_images], d_pre)
        self.opt_g.step()
        return bce, mae, occupancy

    def train_step(self, real_images, real_energy) -> dict[str, float]:
        """The whole iteration of reference section 4 on one real batch."""
        cfg, xp = self.model.config, self.backend.xp
        n = real_energy.shape[0]
        d_real = self.d_step(real_images, real_energy, 1.0)
        z, energy = self.sample_inputs(n)
        fake = self.model.generator.forward([z, energy], True)
        d_fake = self.d_step(fake, energy, 0.0)
        targets, target_response = None, 1.0
        if cfg.energy_ratio_loss_weight > 0:
            real_sums = sum(x.reshape(n, -1).sum(axis=1) for x in real_images)
            target_response = float((real_sums / real_energy).mean())
        if cfg.g_sparsity_loss_weight > 0:
            targets = xp.stack([(x.reshape(n, -1) > 0).mean(axis=1) for x in real_images], axis=1)
        g_bce, g_energy, g_occupancy, g_ratio = [], [], [], []
        for _ in range(cfg.generator_steps):
            z, energy = self.sample_inputs(n)
            if targets is not None:
                energy = real_energy
            bce, mae, occupancy = self.g_step(z, energy, targets, target_response)
            g_bce.append(bce)
            g_energy.append(mae)
            g_occupancy.append(occupancy)
            g_ratio.append(self.last_ratio_mae)
        losses = {"d_real": d_real, "d_fake": d_fake, "g_bce": float(np.mean(g_bce)),
                  "g_energy_mae_gev": float(np.mean(g_energy))}
        if targets is not None:
            losses["g_occupancy"] = float(np.mean(g_occupancy))
        if cfg.energy_ratio_loss_weight > 0:
            losses["g_energy_ratio_mae"] = float(np.mean(g_ratio))
        return losses

    def recalibrate_batchnorm(self, n_batches: int) -> None:
        """Precise BN: the generator's BatchNorm moving statistics become the average batch statistics of
        ``n_batches`` training-mode forwards of fresh (z, E) (batch size of the config); see
        :func:`recalibrate_batchnorm`."""
        gen, n = self.model.generator, self.model.config.batch_size
        recalibrate_batchnorm(gen, lambda: gen.forward(list(self.sample_inputs(n)), True), n_batches)


def recalibrate_batchnorm(net, run_batch, n_batches: int) -> None:
    """Set every BatchNorm of ``net`` to the mean of the batch means and of the batch variances seen in
    ``n_batches`` calls of ``run_batch()`` (a training-mode forward of ``net``). No weights change, and the state
    of every other layer of ``net`` (the AnnealedReLU schedule, which advances on each training-mode forward) is
    restored afterwards; momenta and update flags too."""
    layers = list(net.walk())
    norms = [layer for layer in layers if isinstance(layer, BatchNorm)]
    if not norms or n_batches < 1:
        return
    saved = {id(layer): dict(layer.state) for layer in layers if not isinstance(layer, BatchNorm)}
    settings = [(bn.momentum, bn.update_statistics) for bn in norms]
    try:
        for k in range(1, n_batches + 1):
            for bn in norms:  # moving = ((k - 1) moving + batch) / k: the running mean of the batch statistics
                bn.momentum, bn.update_statistics = (k - 1) / k, True
            run_batch()
    finally:
        for bn, (momentum, flag) in zip(norms, settings):
            bn.momentum, bn.update_statistics = momentum, flag
        for layer in layers:
            if id(layer) in saved:
                layer.state.clear()
                layer.state.update(saved[id(layer)])


TrainingNaN = LossNotFinite  # a NaN or infinite loss (the name this module used to give it)
_check_finite = check_finite


class CaloGANTrainer:
    """The registry's trainer interface (calosim.models.registry) for CaloGAN, around a :class:`GANTrainer`:
    ``optimizers``, ``train_step(layers MeV, E GeV)`` on NumPy batches, ``state()`` / ``load_state()``
    (nothing to keep: every source of randomness is an RNG the run checkpoints)."""

    def __init__(self, model: CaloGAN, rng: np.random.Generator):
        self.model = model
        self.gan = GANTrainer(model, rng)
        self.optimizers = {"generator": self.gan.opt_g, "discriminator": self.gan.opt_d}

    def state(self) -> dict:
        return {}

    def load_state(self, state: dict) -> None:
        pass

    def start_epoch(self, epoch: int, epochs: int) -> None:
        """Called by the loop before epoch ``epoch`` of ``epochs`` (1-based): both learning rates fall linearly
        from the config's at the first epoch to lr_final_fraction of them at the last (a function of the epoch
        alone, so a resumed run continues the schedule)."""
        cfg = self.model.config
        progress = (epoch - 1) / (epochs - 1) if epochs > 1 else 0.0
        factor = 1.0 - (1.0 - cfg.lr_final_fraction) * progress
        self.gan.opt_g.lr, self.gan.opt_d.lr = cfg.lr_g * factor, cfg.lr_d * factor

    def end_epoch(self) -> None:
        """Called by the loop after each epoch's steps, before validation: precise BN if the config asks."""
        if self.model.config.bn_recalibration_batches > 0:
            self.gan.recalibrate_batchnorm(self.model.config.bn_recalibration_batches)

    def train_step(self, layers, energy) -> dict[str, float]:
        """One iteration on per-layer (B, R, C) MeV cells and energies (B,) GeV (NumPy)."""
        be, scale = self.model.backend, self.model.config.image_scale
        images = [be.asarray(x.reshape(*x.shape, 1) / scale) for x in layers]
        return self.gan.train_step(images, be.asarray(energy))


# --------------------------------------------------------------------------- validation
def validation_observables(layers_mev, energy_gev, geometry) -> dict[str, np.ndarray]:
    """Per-shower observables the validation score compares: the response E_tot/E_in and, in the CaloGAN
    geometry, the paper's 20 shower shapes (calosim.evaluate.observables.calogan_observables); in any other
    geometry the layer fractions f_l = E_l / E_tot and sparsities (fraction of cells > 0)."""
    n = len(energy_gev)
    e = layer_sums(layers_mev, n)  # MeV
    e_tot = e.sum(axis=1)
    out = {"response": e_tot / (1000.0 * np.asarray(energy_gev, np.float64))}
    if is_calogan(geometry):
        out.update(calogan_observables(layers_mev))
        return out
    for i in range(e.shape[1]):
        out[f"f_{i}"] = e[:, i] / (e_tot + 1e-6)
        out[f"sparsity_{i}"] = (np.asarray(layers_mev[i]).reshape(n, -1) > 0).mean(axis=1)
    return out


RESPONSE_WEIGHT = 6.0  # of |<E_tot/E_in>_gen / <E_tot/E_in>_val - 1| in the validation score


def validation_score(gen: dict[str, np.ndarray], ref: dict[str, np.ndarray],
                     response_weight: float = RESPONSE_WEIGHT) -> dict[str, float]:
    """{"score": ..., "response_gen", "response_ref", "sep_<name>" ...} (see the module docstring)."""
    out = {"response_gen": float(gen["response"].mean()), "response_ref": float(ref["response"].mean())}
    score = response_weight * abs(out["response_gen"] / out["response_ref"] - 1.0)
    for name in ref:
        sep = separation_power(ref[name], gen[name])
        out[f"sep_{name}"] = sep
        score += sep
    out["score"] = float(score)
    return out


def generate_arrays(model, energy_gev: np.ndarray, rng: np.random.Generator, batch_size: int = 1000):
    """Showers of a model of any type for the given incident energies (GeV) in inference mode: per-layer
    (N, R, C) float32 MeV."""
    be = model.backend
    parts = []
    for start in range(0, len(energy_gev), batch_size):
        e = np.asarray(energy_gev[start:start + batch_size], np.float64)
        if hasattr(model, "sample_latent"):
            z = model.sample_latent(rng, len(e))
        else:  # CaloGAN
            z = rng.standard_normal((len(e), model.config.latent_dim))
        labels = model.sample_labels(rng, len(e)) if hasattr(model, "sample_labels") else None
        kw = {} if labels is None else {"labels": labels}
        images = model.generate(be.asarray(z), be.asarray(e), training=False, **kw)
        parts.append([be.to_numpy(x).astype(np.float32) for x in images])
    return [np.concatenate([p[i] for p in parts]) for i in range(len(model.geometry.layers))]


# --------------------------------------------------------------------------- the run
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


def _energy_range(path, rows: range) -> tuple[float, float]:
    """The training rows' incident-energy range in GeV, rounded outwards to whole GeV (kept if below 1 GeV)."""
    lo, hi = math.inf, -math.inf
    with open_showers(path, validate=False) as f:
        for start in range(rows.start, rows.stop, 10_000):
            e = f.read(start, min(start + 10_000, rows.stop)).energy
            lo, hi = min(lo, float(e.min())), max(hi, float(e.max()))
    lo = float(math.floor(lo)) if lo >= 1.0 else lo
    return lo, float(math.ceil(hi))


def _init_rng(seed: int) -> np.random.Generator:
    """The generator the run's initial weights are drawn from (the first of the run's four seed streams)."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(4)[0])


def initial_model(run_dir, backend: str = "numba"):
    """The model of a run as it was before its first step: rebuilt from the run's run.json (model type, config,
    geometry, particle, energy range) with the weights its seed draws, the same as the run started from. The
    untrained baseline against which an evaluation shows what training bought."""
    from calosim.geometry import Geometry

    path = Path(run_dir) / RUN_JSON
    if not path.is_file():
        raise DataError(f"{run_dir}: not a run directory ({RUN_JSON} is missing)")
    options = json.loads(path.read_text())
    kind = registry.get_model_type(options["model_type"])
    be = get_backend(backend, options.get("dtype", "float32"))
    return kind.build(kind.config_from_dict(options["config"]), Geometry.from_dict(options["geometry"]), be,
                      _init_rng(int(options["seed"])), particle=options["particle"],
                      energy_range=tuple(options["energy_range"]))


def _rng_state(rng: np.random.Generator) -> dict:
    return rng.bit_generator.state


def _set_rng_state(rng: np.random.Generator, state: dict) -> None:
    rng.bit_generator.state = state


def _dropout_layers(model):
    return [layer for net in networks_of(model).values() for layer in net.walk() if hasattr(layer, "rng")]


def _read_log(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _batch_source(cfg, data_path, train_rows: range, dataset: ShowerDataset, shuffle_rng, reporter):
    """The batches of one epoch, as a function of no arguments: the dataset's shuffled chunks, or (a config
    with n_classes > 1, or with energy_schedule on discrete energies) the training rows held in memory."""
    if getattr(cfg, "n_classes", 1) > 1:
        labels = read_labels(data_path, train_rows.start, train_rows.stop)
        if labels is None:
            raise DataError(f"{data_path}: config {cfg.name!r} has n_classes {cfg.n_classes} but the file holds no "
                            "class labels (a jet-image file with image and signal / label / y)")
        if labels.max(initial=0) >= cfg.n_classes:
            raise DataError(f"{data_path}: labels up to {int(labels.max())} for n_classes {cfg.n_classes}")
        rows_in_memory = dataset.load()

        def labelled():
            order = shuffle_rng.permutation(len(labels))
            for b in range(0, len(order) - cfg.batch_size + 1, cfg.batch_size):
                rows = order[b:b + cfg.batch_size]
                yield [x[rows] for x in rows_in_memory.layers], rows_in_memory.energy[rows], labels[rows]

        return labelled
    if getattr(cfg, "energy_schedule", False):
        rows_in_memory = dataset.load()
        if energy_point_batches(rows_in_memory.energy, cfg.batch_size, np.random.default_rng(0)) is not None:
            def by_energy_point():
                for rows in energy_point_batches(rows_in_memory.energy, cfg.batch_size, shuffle_rng):
                    yield [x[rows] for x in rows_in_memory.layers], rows_in_memory.energy[rows]

            return by_energy_point
        reporter.message("energy_schedule: the training energies are not discrete; using the shuffled order")
    return lambda: iter(dataset)


def train(out, data=None, backend: str = "numba", config: str | None = None, config_file=None,
          epochs: int | None = None, batch_size: int | None = None, seed: int = 0, resume: bool = False,
          validation_fraction: float = 0.2, dtype: str = "float32", chunk_size: int = 10_000,
          reporter: Reporter | None = None, model_type: str = "calogan") -> TrainResult:
    """Train (or resume) a run in directory ``out``; see the module docstring.

    model_type: a type of calosim.models.registry ("calogan", "wgan-gp", "vae", "lagan"); its trainer does the
    steps, one call of ``train_step`` per batch (calogan: :class:`CaloGANTrainer`).
    config: a configuration name of the model type (default: its ``small``).

    With ``energy_schedule`` set in a wgan-gp config and a training file of at most 50 distinct incident
    energies, the training rows are held in memory and every epoch visits the energy points in increasing order
    (calosim.models.wgan_gp.energy_point_batches). A config with ``n_classes`` 2 (lagan) needs a file with
    labels (the jet-image layout, calosim.data.formats): the training rows and their labels are then held in
    memory and shuffled together every epoch; the trainer gets (layers, energy, labels).

    data: a CaloGAN or CaloChallenge shower file (MeV cells, GeV energies); default the bundled Geant4 e+.
    epochs, batch_size: override the config's; everything else comes from ``config`` and ``config_file``.
    """
    from calosim.data.bundled import bundled_path

    kind = registry.get_model_type(model_type)
    reporter = reporter or Reporter()
    run_dir = Path(out)
    data_path = Path(data) if data is not None else bundled_path("eplus")
    cfg = kind.get_config(config, config_file, epochs=epochs, batch_size=batch_size)
    train_rows, val_rows = split(data_path, validation_fraction)
    cfg = kind.fit_config(cfg, data_path, train_rows)
    ckpt_path = run_dir / CHECKPOINT
    if ckpt_path.exists() and not resume:
        raise TrainingError(f"{run_dir} already holds a run ({CHECKPOINT}); pass --resume to continue it, or "
                            "choose another --out")
    if resume and ckpt_path.exists():
        header = read_model_header(ckpt_path)
        if header["model"] != model_type or header["config"].replace(epochs=cfg.epochs) != cfg:
            raise TrainingError(f"{ckpt_path}: the run was started with another config or model type; resume with "
                                "the same --model-type, --config, --config-file and --batch-size (only --epochs "
                                "may change)")
    elif resume:
        reporter.message(f"no {CHECKPOINT} in {run_dir}: starting the run from scratch")
    run_dir.mkdir(parents=True, exist_ok=True)

    if len(train_rows) < cfg.batch_size:
        raise DataError(f"{data_path}: {len(train_rows)} training showers, fewer than one batch of {cfg.batch_size}")
    seeds = np.random.SeedSequence(seed).spawn(4)
    init_rng, noise_rng, shuffle_rng = _init_rng(seed), *(np.random.default_rng(s) for s in seeds[1:3])
    validation_seed = seeds[3]
    dataset = ShowerDataset(data_path, chunk_size=chunk_size, batch_size=cfg.batch_size, shuffle=True,
                            rng=shuffle_rng, rows=train_rows, drop_last=True, arrays=True)
    geometry = dataset.geometry
    energy_range = cfg.energy_range or _energy_range(data_path, train_rows)
    be = get_backend(backend, dtype)
    model = kind.build(cfg, geometry, be, init_rng, particle=dataset.particle, energy_range=energy_range)
    trainer = kind.trainer_class(model, noise_rng)
    dropouts = _dropout_layers(model)
    batches = _batch_source(cfg, data_path, train_rows, dataset, shuffle_rng, reporter)

    epochs_done, best_score, best_epoch = 0, None, None
    if resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path, model, trainer.optimizers)
        epochs_done, best_score, best_epoch = state["epochs_done"], state["best_score"], state["best_epoch"]
        _set_rng_state(noise_rng, state["rng"]["noise"])
        _set_rng_state(shuffle_rng, state["rng"]["shuffle"])
        for layer, s in zip(dropouts, state["rng"]["dropout"]):
            _set_rng_state(layer.rng, s)
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
    val_ref = (validation_observables(validation.layers, validation.energy, geometry) if validation is not None
               else None)

    for epoch in range(epochs_done + 1, cfg.epochs + 1):
        t0 = time.perf_counter()
        reporter.epoch_start(epoch, cfg.epochs, dataset.n_batches)
        if hasattr(trainer, "start_epoch"):  # e.g. CaloGAN's learning-rate schedule (config lr_final_fraction)
            trainer.start_epoch(epoch, cfg.epochs)
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
            for k, v in losses.items():  # a trainer may report a loss on some steps only (wgan-gp's g_loss)
                sums[k] = sums.get(k, 0.0) + v
                counts[k] = counts.get(k, 0) + 1
            n_steps += 1
            reporter.step(losses)
        bad = [p.name for net in networks_of(model).values() for p in net.parameters()
               if not bool(be.xp.isfinite(p.value).all())]
        if bad:
            raise TrainingError(f"training stopped at epoch {epoch}: non-finite weights in {bad[0]}; "
                                f"{ckpt_path} (after epoch {epochs_done}) is intact")
        if hasattr(trainer, "end_epoch"):  # e.g. CaloGAN's precise BN (config bn_recalibration_batches)
            trainer.end_epoch()
        record = {"epoch": epoch, "steps": n_steps, **{k: sums[k] / counts[k] for k in sums}}
        if val_ref is not None:
            gen_layers = generate_arrays(model, validation.energy, np.random.default_rng(validation_seed))
            record.update(validation_score(validation_observables(gen_layers, validation.energy, geometry), val_ref))
        record["seconds"] = time.perf_counter() - t0
        score = record.get("score")
        if score is None:  # no validation split: the last epoch is the best we know
            best_epoch = epoch
        elif best_score is None or score < best_score:
            best_score, best_epoch = score, epoch
        record["best_epoch"] = best_epoch
        info = {"epoch": epoch, "seed": seed, "backend": backend, "validation_score": -1.0 if score is None else score}
        save_model(run_dir / LAST, model, **info)
        if best_epoch == epoch:
            save_model(run_dir / BEST, model, **info)
        with open(run_dir / LOG, "a") as log:
            log.write(json.dumps(record) + "\n")
        epochs_done = epoch
        trainer_state = {"epochs_done": epochs_done, "best_score": best_score, "best_epoch": best_epoch,
                         "rng": {"noise": _rng_state(noise_rng), "shuffle": _rng_state(shuffle_rng),
                                 "dropout": [_rng_state(layer.rng) for layer in dropouts]},
                         "trainer": trainer.state(), "options": options}
        save_checkpoint(ckpt_path, model, trainer.optimizers, trainer_state, **info)
        history.append(record)
        reporter.epoch_end(record)
    if epochs_done == 0 and not ckpt_path.exists():
        raise ConfigError("epochs must be >= 1 for a new run")
    return TrainResult(run_dir, epochs_done, best_epoch, best_score, history)
