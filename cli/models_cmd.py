"""`calosim models list` and `calosim models show NAME`: the pretrained models shipped with calosim."""

import json

import click

from calosim.cli.main import run_library_call


@click.group()
def models():
    """Pretrained models shipped with calosim: use one by name, e.g. `calosim generate --model eplus`."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="print the whole catalogue as JSON")
def list_cmd(as_json):
    """Each model with its recipe, training data and quality measured against Geant4 showers it never saw
    (low-level classifier AUC, FPD, mean and worst separation power of the observables, mean E_tot/E_inc)."""
    from calosim.pretrained import catalogue, format_catalogue

    entries = run_library_call(catalogue)
    click.echo(json.dumps(entries, indent=2) if as_json else format_catalogue(entries))


@models.command()
@click.argument("name")
def show(name):
    """Everything the catalogue says of model NAME (JSON), and where its file is."""
    from calosim.pretrained import catalogue, pretrained_path

    path = run_library_call(pretrained_path, name)
    click.echo(json.dumps({**catalogue()[name], "path": str(path)}, indent=2))
