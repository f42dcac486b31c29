"""`calosim train`: train (or resume) a run of any model type."""

import click

from calosim.backends import BACKEND_NAMES
from calosim.models.registry import MODEL_TYPE_NAMES, config_names


def _reporter():
    from calosim.training import Reporter

    class BarReporter(Reporter):
        """One click progress bar per epoch with the running losses; a summary line after it."""

        bar = None

        def epoch_start(self, epoch, epochs, n_batches):
            self.bar = click.progressbar(length=n_batches, label=f"epoch {epoch}/{epochs}",
                                         item_show_func=lambda s: s, show_pos=True, width=24)
            self.bar.__enter__()

        def step(self, losses):
            self.bar.update(1, " ".join(f"{k} {v:.3g}" for k, v in losses.items()))

        def epoch_end(self, record):
            self.bar.__exit__(None, None, None)
            skip = {"epoch", "steps", "seconds", "best_epoch", "score", "response_gen", "response_ref"}
            line = f"epoch {record['epoch']}: " + ", ".join(
                f"{k} {v:.3g}" for k, v in record.items() if k not in skip and not k.startswith("sep_"))
            if "score" in record:
                line += (f"; validation: E_tot/E_in {record['response_gen']:.3f} (data {record['response_ref']:.3f}),"
                         f" score {record['score']:.3f} (best: epoch {record['best_epoch']})")
            click.echo(line + f" [{record['seconds']:.0f} s]")

        def message(self, text):
            click.echo(text)

    return BarReporter()


@click.command()
@click.option("--data", type=click.Path(exists=True, dir_okay=False), default=None,
              help="training showers (CaloGAN or CaloChallenge file); default: the bundled 4000 Geant4 e+")
@click.option("--backend", type=click.Choice(BACKEND_NAMES), default="numba", show_default=True,
              help="where the computation runs: numpy (reference), numba (CPU), cupy (NVIDIA GPU)")
@click.option("--model-type", type=click.Choice(MODEL_TYPE_NAMES), default="calogan", show_default=True,
              help="calogan; wgan-gp (FastCaloGAN-style, flattened voxels); vae; lagan (one 25 x 25 layer)")
@click.option("--config", "config", default=None,
              help="configuration of the model type (default: small); " + ", ".join(
                  f"{kind}: {'|'.join(names)}" for kind, names in config_names().items()))
@click.option("--config-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="JSON or TOML file overriding fields of the configuration (e.g. lr_g = 1e-4)")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="total epochs (default: the config's)")
@click.option("--batch-size", type=click.IntRange(min=2), default=None, help="default: the config's")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="run directory: log.jsonl, checkpoint.h5, best.h5, last.h5")
@click.option("--seed", default=0, show_default=True, help="seed of weights, noise and data shuffling")
@click.option("--resume", is_flag=True, help="continue the run in --out from its last checkpoint")
@click.option("--energy-model", is_flag=True,
              help="energy factorisation: also train a conditional model of the layer energies given the incident "
                   "energy (calosim.models.energy) and rescale every generated layer to its energies")
@click.option("--mirror/--no-mirror", default=False, show_default=True,
              help="reflect each training shower at random along the axes its geometry is mirror symmetric under "
                   "(both axes of every CaloGAN layer)")
@click.option("--mirror-samples/--no-mirror-samples", default=None,
              help="reflect every shower the model samples (validation, generate, export) at random along the axes "
                   "its geometry is mirror symmetric under, as Geant4's showers are distributed; stored in the model "
                   "file  [default: on where the geometry is mirror symmetric]")
@click.option("--calibrate-cells/--no-calibrate-cells", default=True, show_default=True,
              help="when the run ends, fit the calibration to the first 10,000 training showers: per layer the "
                   "spread of the showers' profiles and the low tail of the cell spectrum, the map of each shower's "
                   "own layer energies (the response onto the showers' distribution, the layer shares onto the "
                   "energy model's), and per cell and energy the mean shape (stored in best.h5 and last.h5; "
                   "`calosim calibrate` refits it)")
@click.option("--validation-fraction", type=click.FloatRange(0.0, 0.9), default=0.2, show_default=True,
              help="the last fraction of the file's showers, never trained on, scored after every epoch")
@click.option("--energy-range", nargs=2, type=click.FloatRange(min=0.0, min_open=True), default=None,
              metavar="LO HI", help="the conditioning range in GeV (default: what the training data robustly covers); "
                                    "showers outside it are refused unless --drop-energy-outliers")
@click.option("--drop-energy-outliers", is_flag=True,
              help="train without the showers whose incident energy lies outside the conditioning range")
@click.option("--distributed", is_flag=True,
              help="data-parallel on MPI: start with mpiexec -n K calosim train --distributed ... (srun -n K under "
                   "SLURM); each rank trains on its B/K rows of every global batch B (the config's or --batch-size, "
                   "a multiple of K), gradients averaged by one allreduce per step; rank 0 writes the run. Without "
                   "BatchNorm or minibatch discrimination (wgan-gp, vae) the weights equal one process's up to float32 "
                   "summation order; --resume works with any K")
@click.option("--sync-batchnorm", is_flag=True,
              help="with --distributed: BatchNorm statistics of the global batch (one allreduce per BatchNorm forward "
                   "and backward) instead of each rank's slice (the default, as PyTorch DDP)")
def train(data, backend, model_type, config, config_file, epochs, batch_size, out, seed, resume, energy_model,
          mirror, mirror_samples, calibrate_cells, validation_fraction, energy_range, drop_energy_outliers, distributed,
          sync_batchnorm):
    """Train a model (CaloGAN by default: reference section 4, D on real, D on fake, G twice; BCE + 0.05 energy
    MAE; or --model-type wgan-gp / vae / lagan), keeping the best epoch by validation score in OUT/best.h5, the
    last in OUT/last.h5, and a checkpoint after every epoch (OUT/checkpoint.h5; --resume continues from it)."""
    from calosim.cli.main import run_library_call
    from calosim.training import train as run_train

    if sync_batchnorm and not distributed:
        raise click.UsageError("--sync-batchnorm needs --distributed")
    parallel = None
    if distributed:
        from calosim.distributed.mpi import DataParallel

        parallel = run_library_call(DataParallel.from_environment)
    kwargs = dict(data=data, backend=backend, config=config, config_file=config_file, epochs=epochs,
                  batch_size=batch_size, seed=seed, resume=resume, validation_fraction=validation_fraction,
                  model_type=model_type, energy_model=energy_model, energy_range=energy_range,
                  drop_energy_outliers=drop_energy_outliers, mirror=mirror, mirror_samples=mirror_samples,
                  calibrate_cells=calibrate_cells)
    if parallel is not None:
        result = _train_rank(parallel, run_train, out, sync_batchnorm, kwargs)
        if not parallel.is_root:
            return
    else:
        result = run_library_call(run_train, out, reporter=_reporter(), **kwargs)
    best = f"best epoch {result.best_epoch} (score {result.best_score:.3f})" if result.best_score is not None else ""
    where = f" on {parallel.size} MPI ranks" if parallel is not None else ""
    click.echo(f"done: {result.epochs_done} epochs in {result.run_dir}{where}; {best}")


def _train_rank(parallel, run_train, out, sync_batchnorm: bool, kwargs: dict):
    """This rank's part of a data-parallel run. An error every rank meets alike (the setup's) is said once, by
    rank 0, and every rank exits 1; any other error is said by the rank that met it, which then ends the whole
    job (MPI_Abort), since the other ranks would wait for it in the next allreduce."""
    import sys

    from calosim.cli.main import one_line, run_library_call
    from calosim.distributed.mpi import DistributedSetupError
    from calosim.training import Reporter

    reporter = _reporter() if parallel.is_root else Reporter()
    try:
        return run_library_call(run_train, out, reporter=reporter, parallel=parallel, sync_batchnorm=sync_batchnorm,
                                reraise=(DistributedSetupError,), **kwargs)
    except DistributedSetupError as exc:
        if parallel.is_root:
            click.echo(f"Error: {one_line(exc)}", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        prefix = "" if parallel.is_root else f"rank {parallel.rank}: "
        click.echo(f"Error: {prefix}{exc.format_message()}", err=True)
        sys.stderr.flush()
        parallel.abort(1)
