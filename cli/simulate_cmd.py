"""`calosim simulate`: showers from the built-in parametric simulator, written to a CaloGAN file."""

import sys

import click

from calosim.cli.main import FORCE_OPTION, refuse_existing, run_library_call


@click.command()
@click.option("--particle", type=click.Choice(["eplus", "gamma", "piplus"]), required=True)
@click.option("--num-showers", "-n", type=click.IntRange(min=1), required=True)
@click.option("--energy-range", nargs=2, type=float, default=(1.0, 100.0), show_default=True,
              help="incident energy, uniform between LOW and HIGH GeV")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["calogan", "calochallenge"]), default="calogan",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True)
@click.option("--engine", type=click.Choice(["parametric", "geant4"]), default="parametric", show_default=True,
              help="geant4: real Geant4 (needs the geant4 extra); resumable, partial results in OUTPUT.parts/")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Geant4 worker processes")
@click.option("--approximate-data", is_flag=True,
              help="Geant4 without its data sets: use calosim's stand-in low-energy tables")
@click.option("--dask", "dask_address", default=None, metavar="ADDRESS",
              help="--engine geant4 in shards on Dask: local:N (N single-threaded worker processes here) or a "
                   "scheduler address (tcp://host:8786); shards are kept in OUTPUT.shards/ until combined, so "
                   "rerunning the same command resumes. Every shower has its own seed: the file equals the "
                   "one-process run's")
@click.option("--shard-size", type=click.IntRange(min=1), default=None,
              help="with --dask: showers per shard (default 100)")
@click.option("--virtual", is_flag=True,
              help="with --dask: keep the shards and write OUTPUT as an HDF5 virtual dataset over them")
@FORCE_OPTION
def simulate(particle, num_showers, energy_range, seed, fmt, output, engine, workers, approximate_data, dask_address,
             shard_size, virtual, force):
    """Fast parametric (GFlash-style) showers in the CaloGAN geometry -- for experiments, not physics; or real
    Geant4 showers with --engine geant4 (in worker processes, or in shards on Dask with --dask)."""
    import math

    from calosim.data.formats import write_showers
    from calosim.data.simulate import simulate_uniform

    if engine != "geant4" and (dask_address or shard_size or virtual):
        raise click.UsageError("--dask, --shard-size and --virtual need --engine geant4")

    def run():
        length, label = num_showers, f"simulating {particle}"
        if dask_address is not None:
            from calosim.geant4.engine import DEFAULT_SHARD_SIZE

            length, label = math.ceil(num_showers / (shard_size or DEFAULT_SHARD_SIZE)), "shards"
        with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
            if engine == "geant4":
                from calosim.geant4 import simulate_geant4_to_file

                simulate_geant4_to_file(output, particle, num_showers, energy_range, seed, format=fmt,
                                        workers=workers, approximate_data=approximate_data, progress=bar.update,
                                        dask=dask_address, shard_size=shard_size, virtual=virtual)
            else:
                showers = simulate_uniform(particle, num_showers, energy_range, seed, progress=bar.update)
        if engine != "geant4":
            write_showers(output, showers, format=fmt, seed=seed)

    refuse_existing(output, force)
    run_library_call(run)
    click.echo(f"wrote {num_showers} {particle} showers to {output}")
