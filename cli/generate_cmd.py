"""`calosim generate`: sample showers from a trained model into a shower file."""

import sys

import click

from calosim.backends import BACKEND_NAMES
from calosim.cli.main import FORCE_OPTION


@click.command()
@click.option("--model", "model", required=True, metavar="MODEL",
              help="a model file, a run directory (its best.h5, else last.h5) or the name of a shipped pretrained "
                   "model (calosim models list)")
@click.option("--backend", type=click.Choice(BACKEND_NAMES), default="numba", show_default=True,
              help="where the generator runs: numpy (reference), numba (CPU), cupy (NVIDIA GPU)")
@click.option("--num-showers", "-n", type=click.IntRange(min=1), default=None,
              help="how many showers (default with --energies-from: one per energy in the file)")
@click.option("--energy", type=click.FloatRange(min=0.0, min_open=True), default=None,
              help="incident energy in GeV for every shower")
@click.option("--energy-range", nargs=2, type=float, default=None,
              help="incident energies uniform in [LO, HI] GeV (default: the model's training range)")
@click.option("--energies-from", type=click.Path(exists=True, dir_okay=False), default=None,
              help="take the incident energies, in order, from this shower file")
@click.option("--batch-size", type=click.IntRange(min=1), default=1000, show_default=True,
              help="showers per generator pass and per write")
@click.option("--seed", default=0, show_default=True, help="seed of the latent vectors and energies")
@click.option("--compress", is_flag=True, help="gzip the datasets (smaller, slower)")
@click.option("--initial-weights", is_flag=True,
              help="generate with the run's untrained starting point (rebuilt from --model RUN_DIR's run.json and "
                   "seed) instead of its trained weights: the baseline that shows what training bought")
@click.option("--format", "file_format", type=click.Choice(["calogan", "calochallenge"]), default=None,
              help="output layout (default: the layout of the model's training data): calogan = layer_i (MeV) and "
                   "energy (GeV); calochallenge = showers (N, voxels) and incident_energies (MeV)")
@click.option("--class-fraction", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
              help="two-class models (e.g. lagan with n_classes 2): the share of class 1; the file's 'label' "
                   "dataset holds each shower's class")
@click.option("--allow-extrapolation", is_flag=True,
              help="allow incident energies outside the model's training range (the model was never trained there)")
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False),
              help="output HDF5 file")
@click.option("--dask", "dask_address", default=None, metavar="ADDRESS",
              help="generate in shards on Dask: local:N (N single-threaded worker processes here) or a scheduler "
                   "address (tcp://host:8786, e.g. of a dask-jobqueue SLURMCluster); shards are kept in "
                   "OUTPUT.shards/ until combined, so rerunning the same command resumes")
@click.option("--shard-size", type=click.IntRange(min=1), default=None,
              help="showers per shard (default with --dask: 10000). Shard k draws its showers from the streams of "
                   "(seed, k), so the file is the same for any number of workers and for the one-process run with "
                   "the same --shard-size, and differs from the unsharded file of the same seed")
@click.option("--virtual", is_flag=True,
              help="with --dask: keep the shards and write OUTPUT as an HDF5 virtual dataset over them instead of "
                   "copying them into one file")
@FORCE_OPTION
def generate(model, backend, num_showers, energy, energy_range, energies_from, batch_size, seed, compress,
             initial_weights, file_format, class_fraction, allow_extrapolation, output, dask_address, shard_size,
             virtual, force):
    """Generate showers with a trained model of any type and write them, chunk by chunk, in the layout of its
    training data (or --format); with --dask or --shard-size, in shards (see --shard-size)."""
    import math

    from calosim.cli.main import refuse_existing, run_library_call
    from calosim.sampling import DEFAULT_SHARD_SIZE, count_energies
    from calosim.sampling import generate as run_generate
    from calosim.training import resolve_model_path

    refuse_existing(output, force)
    run_library_call(resolve_model_path, model)  # a wrong name fails before the progress bar starts
    total = num_showers
    if total is None and energies_from is not None:
        total = run_library_call(count_energies, energies_from)
    if dask_address is not None:  # progress over shards, as they finish on the workers
        length, label = math.ceil((total or 0) / (shard_size or DEFAULT_SHARD_SIZE)), "shards"
    else:
        length, label = total or 0, "generating"
    with click.progressbar(length=length, label=label, show_pos=True, width=30,
                           file=sys.stderr if dask_address is not None else None) as bar:
        result = run_library_call(run_generate, model, output, num_showers=num_showers, backend=backend,
                                  energy=energy, energy_range=tuple(energy_range) if energy_range else None,
                                  energies_from=energies_from, batch_size=batch_size, seed=seed,
                                  compression="gzip" if compress else None, progress=bar.update,
                                  initial=initial_weights, format=file_format, class_fraction=class_fraction,
                                  allow_extrapolation=allow_extrapolation, shard_size=shard_size,
                                  dask=dask_address, virtual=virtual)
    if dask_address is not None:
        click.echo(f"wrote {result.n} showers ({result.format} layout) to {result.path} from {length} shards on Dask "
                   f"({dask_address}): {result.ms_per_shower:.3f} ms/shower wall time")
        return
    click.echo(f"wrote {result.n} showers ({result.format} layout) to {result.path}: "
               f"{result.ms_per_shower:.3f} ms/shower ({result.generator_ms_per_shower:.3f} ms/shower in the "
               f"generator, {backend}, batch {batch_size})")
    if result.extrapolated:
        click.echo("note: some incident energies lie outside the model's training range (--allow-extrapolation); "
                   "the model was never trained there")
