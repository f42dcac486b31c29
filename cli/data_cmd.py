"""`calosim data list` and `calosim data show FILE`."""

import click

from calosim.errors import CalosimError


@click.group()
def data():
    """Shower files: the bundled samples and summaries of any CaloGAN / CaloChallenge file."""


@data.command("list")
def list_cmd():
    """The shower samples shipped with calosim."""
    from calosim.data.bundled import list_bundled

    for item in list_bundled():
        where = item["path"] if item["path"] is not None else "(missing from this installation)"
        click.echo(f"{item['name']:8s} {item['particle']:6s} {item['description']}\n         {where}")


@data.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--binning", type=click.Path(exists=True, dir_okay=False),
              help="CaloChallenge binning XML, for challenge files without a geometry attribute")
def show(file, binning):
    """Summarise FILE: format, N, particle, energy range, per-layer mean energy fraction, attributes."""
    from calosim.data.summary import format_summary, summarize

    try:
        info = summarize(file, binning=binning)
    except CalosimError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(format_summary(info))
