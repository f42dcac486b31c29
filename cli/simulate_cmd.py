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
@click.option("--fastsim", "fastsim_model", default=None, metavar="MODEL",
              help="with --engine geant4: a calosim model file, run directory or pretrained name such as eplus "
                   "(CaloGAN geometry) as Geant4's "
                   "fast simulation: e+, e- and gamma entering the calorimeter's front face above "
                   "--fastsim-threshold are killed and the model's shower at their energy is added to the "
                   "readout; everything else Geant4 transports. Implemented as a G4VFastSimulationModel on the "
                   "calorimeter's region, compiled C++ (geant4-pybind 0.1.3 does not bind it to Python). The "
                   "file gets per-shower datasets fastsim (flag), fastsim_particles, fastsim_fallbacks, "
                   "fastsim_entry and fastsim_* attributes (model path and sha256, threshold, range)")
@click.option("--fastsim-threshold", type=click.FloatRange(min=0, min_open=True), default=None, metavar="GEV",
              help="with --fastsim: the lowest kinetic energy that triggers the model [default: the low end of "
                   "the model's training range]; above the range's high end Geant4 transports the particle")
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
def simulate(particle, num_showers, energy_range, seed, fmt, output, engine, workers, approximate_data,
             fastsim_model, fastsim_threshold, dask_address, shard_size, virtual, force):
    """Fast parametric (GFlash-style) showers in the CaloGAN geometry -- for experiments, not physics; or real
    Geant4 showers with --engine geant4 (in worker processes, or in shards on Dask with --dask), optionally with
    a calosim model as Geant4's fast simulation (--fastsim)."""
    import math

    from calosim.data.formats import write_showers
    from calosim.data.simulate import simulate_uniform

    if engine != "geant4" and (fastsim_model is not None or fastsim_threshold is not None):
        raise click.UsageError("--fastsim and --fastsim-threshold need --engine geant4")
    if fastsim_threshold is not None and fastsim_model is None:
        raise click.UsageError("--fastsim-threshold needs --fastsim MODEL")
    if engine != "geant4" and (dask_address or shard_size or virtual):
        raise click.UsageError("--dask, --shard-size and --virtual need --engine geant4")
    if fastsim_model is not None and dask_address is not None:
        raise click.UsageError("--fastsim runs in worker processes (--workers), not on --dask yet")

    fast_simulated = []

    def run():
        fastsim = None
        if fastsim_model is not None:
            from calosim.fastsim import fastsim_settings

            fastsim = fastsim_settings(fastsim_model, fastsim_threshold)
        length, label = num_showers, f"simulating {particle}"
        if dask_address is not None:
            from calosim.geant4.engine import DEFAULT_SHARD_SIZE

            length, label = math.ceil(num_showers / (shard_size or DEFAULT_SHARD_SIZE)), "shards"
        with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
            if engine == "geant4":
                from calosim.geant4 import simulate_geant4_to_file

                showers = simulate_geant4_to_file(output, particle, num_showers, energy_range, seed, format=fmt,
                                                  workers=workers, approximate_data=approximate_data,
                                                  progress=bar.update, fastsim=fastsim, dask=dask_address,
                                                  shard_size=shard_size, virtual=virtual)
                if fastsim is not None:
                    fast_simulated.append(int(showers.datasets["fastsim"].sum()))
            else:
                showers = simulate_uniform(particle, num_showers, energy_range, seed, progress=bar.update)
        if engine != "geant4":
            write_showers(output, showers, format=fmt, seed=seed)

    refuse_existing(output, force)
    run_library_call(run)
    fast = f" ({fast_simulated[0]} with a fast-simulated particle)" if fast_simulated else ""
    click.echo(f"wrote {num_showers} {particle} showers to {output}{fast}")
