"""Train a CaloGAN on a shower file: the loop of reference section 4 with validation, checkpoints and resume.

Each step (batch B of real showers, cells MeV -> training units MeV / image_scale = GeV):
    1. D on the all-real batch, target 1 (BCE with logits), one Adam step of D;
    2. D on an all-fake batch G(z, E) with E ~ U(energy_range) GeV, target 0, one Adam step of D;
    3. generator_steps times (2): fresh z and E, loss BCE(D(G(z, E)), 1) + energy_loss_weight * MAE(sum of
       the generated cells in GeV, E), one Adam step of G (D's weights and BatchNorm statistics are left alone).

A run directory holds:
    log.jsonl        one JSON line per epoch: mean losses, validation metrics and score, seconds
    run.json         the options and the effective config of the run
    checkpoint.h5    after every epoch, atomically: weights, both Adam states, all RNG states (noise, data
                     shuffle, Dropout layers), epochs done, best score (see calosim.checkpoint)
    last.h5, best.h5 model files of the last epoch and of the epoch with the lowest validation score

Resuming (resume=True) restores checkpoint.h5 and continues with the next epoch; because every source of
randomness is restored, the weights equal those of an uninterrupted run with the same seed on the same backend.
A NaN or infinite loss stops the run with a TrainingError before the bad step is applied; checkpoint.h5 then
still holds the last good epoch.

Validation: the last ``validation_fraction`` of the file's rows are never trained on. After each epoch the
generator (inference mode) makes one shower per validation shower, at its incident energy and with the same
latent vectors every epoch, and the score is the sum of the separation powers (10 equal-population bins) of
E_tot/E_in, of each layer's energy fraction and of each layer's sparsity, plus |<E_tot/E_in>_gen /
<E_tot/E_in>_val - 1|. Lower is better.
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
from calosim.data.formats import open_showers, read_showers
from calosim.errors import ConfigError, DataError, TrainingError
from calosim.evaluate.metrics import separation_power
from calosim.losses import bce_with_logits, mean_absolute_error
from calosim.models.calogan import CaloGAN
from calosim.models.config import get_config
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
        self.model.discriminator.backward(dl)
        self.opt_d.step()
        return loss

    def g_loss(self, z, energy):
        """Generator loss: (bce, energy MAE in GeV, d_images) for inputs z, E; D's statistics are not updated."""
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
        return bce, mae, images, dl, ds

    def g_step(self, z, energy) -> tuple[float, float]:
        """One Adam step of G; returns (bce, energy MAE in GeV) before it."""
        cfg = self.model.config
        bce, mae, images, dl, ds = self.g_loss(z, energy)
        _check_finite(bce, "generator (adversarial)")
        _check_finite(mae, "generator (energy)")
        d_images = self.model.discriminator.backward(dl)
        d_energy = (cfg.energy_loss_weight * ds).reshape(-1, 1, 1, 1)
        self.model.generator.backward([dx + d_energy for dx in d_images])
        self.opt_g.step()
        return bce, mae

    def train_step(self, real_images, real_energy) -> dict[str, float]:
        """The whole iteration of reference section 4 on one real batch."""
        n = real_energy.shape[0]
        d_real = self.d_step(real_images, real_energy, 1.0)
        z, energy = self.sample_inputs(n)
        fake = self.model.generator.forward([z, energy], True)
        d_fake = self.d_step(fake, energy, 0.0)
        g_bce, g_energy = [], []
        for _ in range(self.model.config.generator_steps):
            bce, mae = self.g_step(*self.sample_inputs(n))
            g_bce.append(bce)
            g_energy.append(mae)
        return {"d_real": d_real, "d_fake": d_fake, "g_bce": float(np.mean(g_bce)),
                "g_energy_mae_gev": float(np.mean(g_energy))}


class TrainingNaN(TrainingError):
    pass


def _check_finite(value: float, what: str) -> None:
    if not math.isfinite(value):
        raise TrainingNaN(f"the {what} loss is {value}")


# --------------------------------------------------------------------------- validation
def fast_observables(layers_mev, energy_gev) -> dict[str, np.ndarray]:
    """Per-shower response E_tot/E_in, layer fractions f_l = E_l / E_tot and sparsities (fraction of cells > 0)."""
    n = len(energy_gev)
    e = np.stack([np.asarray(x, np.float64).reshape(n, -1).sum(axis=1) for x in layers_mev], axis=1)  # MeV
    e_tot = e.sum(axis=1)
    out = {"response": e_tot / (1000.0 * np.asarray(energy_gev, np.float64))}
    for i in range(e.shape[1]):
        out[f"f_{i}"] = e[:, i] / (e_tot + 1e-6)
        out[f"sparsity_{i}"] = (np.asarray(layers_mev[i]).reshape(n, -1) > 0).mean(axis=1)
    return out


def validation_score(gen: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> dict[str, float]:
    """{"score": ..., "response_gen", "response_ref", "sep_<name>" ...} (see the module docstring)."""
    out = {"response_gen": float(gen["response"].mean()), "response_ref": float(ref["response"].mean())}
    score = abs(out["response_gen"] / out["response_ref"] - 1.0)
    for name in ref:
        sep = separation_power(ref[name], gen[name])
        out[f"sep_{name}"] = sep
        score += sep
    out["score"] = float(score)
    return out


def generate_arrays(model: CaloGAN, energy_gev: np.ndarray, rng: np.random.Generator, batch_size: int = 1000):
    """Showers for the given incident energies (GeV) in inference mode: per-layer (N, R, C) float32 MeV."""
    be = model.backend
    parts = []
    for start in range(0, len(energy_gev), batch_size):
        e = np.asarray(energy_gev[start:start + batch_size], np.float64)
        z = rng.standard_normal((len(e), model.config.latent_dim))
        images = model.generate(be.asarray(z), be.asarray(e), training=False)
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


def _rng_state(rng: np.random.Generator) -> dict:
    return rng.bit_generator.state


def _set_rng_state(rng: np.random.Generator, state: dict) -> None:
    rng.bit_generator.state = state


def _dropout_layers(model: CaloGAN):
    return [layer for net in (model.generator, model.discriminator) for layer in net.walk() if hasattr(layer, "rng")]


def _read_log(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def train(out, data=None, backend: str = "numba", config: str | None = None, config_file=None,
          epochs: int | None = None, batch_size: int | None = None, seed: int = 0, resume: bool = False,
          validation_fraction: float = 0.2, dtype: str = "float32", chunk_size: int = 10_000,
          reporter: Reporter | None = None, model_type: str = "calogan") -> TrainResult:
    """Train (or resume) a CaloGAN run in directory ``out``; see the module docstring.

    model_type: "calogan" (this loop) or another type of calosim.models.registry ("wgan-gp", "vae", "lagan"),
    trained by calosim.train_registry with the same run directory, validation, checkpoints and resume.
    config: a configuration name of the model type (default: its ``small``).

    data: a CaloGAN or CaloChallenge shower file (MeV cells, GeV energies); default the bundled Geant4 e+.
    epochs, batch_size: override the config's; everything else comes from ``config`` and ``config_file``.
    """
    from calosim.data.bundled import bundled_path

    if model_type != "calogan":
        from calosim.train_registry import train_model_type

        return train_model_type(model_type, out, data=data, backend=backend, config=config, config_file=config_file,
                                epochs=epochs, batch_size=batch_size, seed=seed, resume=resume,
                                validation_fraction=validation_fraction, dtype=dtype, chunk_size=chunk_size,
                                reporter=reporter)
    config = config or "small"
    reporter = reporter or Reporter()
    run_dir = Path(out)
    data_path = Path(data) if data is not None else bundled_path("eplus")
    cfg = get_config(config, config_file, epochs=epochs, batch_size=batch_size)
    ckpt_path = run_dir / CHECKPOINT
    if ckpt_path.exists() and not resume:
        raise TrainingError(f"{run_dir} already holds a run ({CHECKPOINT}); pass --resume to continue it, or "
                            "choose another --out")
    state = None
    if resume and ckpt_path.exists():
        header = read_model_header(ckpt_path)
        if header["config"].replace(epochs=cfg.epochs) != cfg:
            raise TrainingError(f"{ckpt_path}: the run was started with another config; resume with the same "
                                "--config, --config-file and --batch-size (only --epochs may change)")
    elif resume:
        reporter.message(f"no {CHECKPOINT} in {run_dir}: starting the run from scratch")
    run_dir.mkdir(parents=True, exist_ok=True)

    train_rows, val_rows = split(data_path, validation_fraction)
    if len(train_rows) < cfg.batch_size:
        raise DataError(f"{data_path}: {len(train_rows)} training showers, fewer than one batch of {cfg.batch_size}")
    seeds = np.random.SeedSequence(seed).spawn(4)
    init_rng, noise_rng, shuffle_rng = (np.random.default_rng(s) for s in seeds[:3])
    validation_seed = seeds[3]
    dataset = ShowerDataset(data_path, chunk_size=chunk_size, batch_size=cfg.batch_size, shuffle=True,
                            rng=shuffle_rng, rows=train_rows, drop_last=True, arrays=True)
    geometry = dataset.geometry
    energy_range = cfg.energy_range or _energy_range(data_path, train_rows)
    be = get_backend(backend, dtype)
    model = CaloGAN.build(cfg, geometry, be, init_rng, particle=dataset.particle, energy_range=energy_range)
    trainer = GANTrainer(model, noise_rng)
    optimizers = {"generator": trainer.opt_g, "discriminator": trainer.opt_d}
    dropouts = _dropout_layers(model)

    epochs_done, best_score, best_epoch = 0, None, None
    if resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path, model, optimizers)
        epochs_done, best_score, best_epoch = state["epochs_done"], state["best_score"], state["best_epoch"]
        _set_rng_state(noise_rng, state["rng"]["noise"])
        _set_rng_state(shuffle_rng, state["rng"]["shuffle"])
        for layer, s in zip(dropouts, state["rng"]["dropout"]):
            _set_rng_state(layer.rng, s)
        reporter.message(f"resuming {run_dir} after epoch {epochs_done}")
    history = [r for r in _read_log(run_dir / LOG) if r.get("epoch", 0) <= epochs_done]
    (run_dir / LOG).write_text("".join(json.dumps(r) + "\n" for r in history))
    options = {"data": str(data_path), "backend": backend, "dtype": dtype, "config": cfg.to_dict(), "seed": seed,
               "validation_fraction": validation_fraction, "train_rows": [train_rows.start, train_rows.stop],
               "validation_rows": [val_rows.start, val_rows.stop], "energy_range": list(energy_range),
               "geometry": geometry.to_dict(), "particle": dataset.particle}
    (run_dir / RUN_JSON).write_text(json.dumps(options, indent=2) + "\n")

    validation = read_showers(data_path, val_rows.start, val_rows.stop) if len(val_rows) else None
    val_ref = fast_observables(validation.layers, validation.energy) if validation is not None else None
    scale = cfg.image_scale

    for epoch in range(epochs_done + 1, cfg.epochs + 1):
        t0 = time.perf_counter()
        reporter.epoch_start(epoch, cfg.epochs, dataset.n_batches)
        sums: dict[str, float] = {}
        n_steps = 0
        for layers, energy in dataset:
            images = [be.asarray(x.reshape(*x.shape, 1) / scale) for x in layers]
            try:
                losses = trainer.train_step(images, be.asarray(energy))
            except TrainingNaN as exc:
                where = (f"{ckpt_path} (after epoch {epochs_done}) is intact: resume from it with lower learning "
                         "rates (--config-file)") if epochs_done else "no checkpoint was written yet"
                raise TrainingError(f"training stopped at epoch {epoch}, step {n_steps + 1}: {exc}; {where}") from None
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v
            n_steps += 1
            reporter.step(losses)
        bad = [p.name for net in (model.generator, model.discriminator) for p in net.parameters()
               if not bool(be.xp.isfinite(p.value).all())]
        if bad:
            raise TrainingError(f"training stopped at epoch {epoch}: non-finite weights in {bad[0]}; "
                                f"{ckpt_path} (after epoch {epochs_done}) is intact")
        record = {"epoch": epoch, "steps": n_steps, **{k: v / max(n_steps, 1) for k, v in sums.items()}}
        if val_ref is not None:
            gen_layers = generate_arrays(model, validation.energy, np.random.default_rng(validation_seed))
            record.update(validation_score(fast_observables(gen_layers, validation.energy), val_ref))
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
                         "options": options}
        save_checkpoint(ckpt_path, model, optimizers, trainer_state, **info)
        history.append(record)
        reporter.epoch_end(record)
    if epochs_done == 0 and not ckpt_path.exists():
        raise ConfigError("epochs must be >= 1 for a new run")
    return TrainResult(run_dir, epochs_done, best_epoch, best_score, history)
