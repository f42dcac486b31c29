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
@FORCE_OPTION
def simulate(particle, num_showers, energy_range, seed, fmt, output, engine, workers, approximate_data, force):
    """Fast parametric (GFlash-style) showers in the CaloGAN geometry -- for experiments, not physics."""
    from calosim.data.formats import write_showers
    from calosim.data.simulate import simulate_uniform

    def run():
        with click.progressbar(length=num_showers, label=f"simulating {particle}", file=sys.stderr) as bar:
            if engine == "geant4":
                from calosim.geant4 import simulate_geant4_to_file

                simulate_geant4_to_file(output, particle, num_showers, energy_range, seed, format=fmt,
                                        workers=workers, approximate_data=approximate_data, progress=bar.update)
            else:
                showers = simulate_uniform(particle, num_showers, energy_range, seed, progress=bar.update)
        if engine != "geant4":
            write_showers(output, showers, format=fmt, seed=seed)

    refuse_existing(output, force)
    run_library_call(run)
    click.echo(f"wrote {num_showers} {particle} showers to {output}")
