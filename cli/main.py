"""The ``calosim`` command: parse arguments, call one library function, print."""

import click

from calosim import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="calosim")
def main():
    """calosim: train and sample GAN fast simulations of calorimeter showers (CaloGAN and relatives)."""
