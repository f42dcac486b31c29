"""`calosim data list`, `calosim data show FILE` and `calosim data slice FILE`."""

import click

from calosim.cli.main import FORCE_OPTION, refuse_existing, run_library_call


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

    info = run_library_call(summarize, file, binning=binning)
    click.echo(format_summary(info))


@data.command("slice")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--rows", nargs=2, type=click.IntRange(min=0), required=True, metavar="START STOP",
              help="copy showers START <= i < STOP (e.g. a held-out part of a training file)")
@click.option("--binning", type=click.Path(exists=True, dir_okay=False),
              help="CaloChallenge binning XML, for challenge files without a geometry attribute")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="new CaloGAN-layout file")
@FORCE_OPTION
def slice_cmd(file, rows, binning, output, force):
    """Copy rows START..STOP of FILE (any supported format) into a new CaloGAN-layout file, validated."""
    from calosim.data.formats import read_showers, write_showers

    start, stop = rows
    if stop <= start:
        raise click.UsageError(f"--rows {start} {stop}: STOP must be larger than START")
    refuse_existing(output, force)
    showers = run_library_call(read_showers, file, start, stop, binning=binning)
    if len(showers) < stop - start:
        raise click.ClickException(f"{file}: holds {start + len(showers)} showers, fewer than STOP {stop}")
    path = run_library_call(write_showers, output, showers, producer=f"calosim data slice {file} rows {start}-{stop}")
    click.echo(f"wrote {len(showers)} showers (rows {start}-{stop} of {file}) to {path}")
