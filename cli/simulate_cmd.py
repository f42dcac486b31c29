"""`calosim simulate`: showers from the built-in parametric simulator, written to a CaloGAN file."""

import sys

import click

from calosim.errors import CalosimError


@click.command()
@click.option("--particle", type=click.Choice(["eplus", "gamma", "piplus"]), required=True)
@click.option("--num-showers", "-n", type=click.IntRange(min=1), required=True)
@click.option("--energy-range", nargs=2, type=float, default=(1.0, 100.0), show_default=True,
              help="incident energy, uniform between LOW and HIGH GeV")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["calogan", "calochallenge"]), default="calogan",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True)
def simulate(particle, num_showers, energy_range, seed, fmt, output):
    """Fast parametric (GFlash-style) showers in the CaloGAN geometry -- for experiments, not physics."""
    from calosim.data.formats import write_showers
    from calosim.data.simulate import simulate_uniform

    try:
        with click.progressbar(length=num_showers, label=f"simulating {particle}", file=sys.stderr) as bar:
            showers = simulate_uniform(particle, num_showers, energy_range, seed, progress=bar.update)
        write_showers(output, showers, format=fmt, seed=seed)
    except CalosimError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {num_showers} {particle} showers to {output}")
