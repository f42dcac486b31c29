"""`calosim evaluate`: compare generated showers with reference showers and write a report."""

import click

from calosim.backends import BACKEND_NAMES


@click.command()
@click.option("--reference", "reference", required=True, type=click.Path(dir_okay=False),
              help="reference (Geant4) showers, CaloGAN or CaloChallenge file")
@click.option("--generated", "generated", required=True, type=click.Path(dir_okay=False),
              help="generated showers in the same geometry")
@click.option("--train", "train", type=click.Path(dir_okay=False), default=None,
              help="the generator's training showers: turns on the memorisation check (the reference "
                   "showers must then be held out)")
@click.option("--baseline", "baseline", type=click.Path(dir_okay=False), default=None,
              help="other generated showers (e.g. of the untrained generator: calosim generate "
                   "--initial-weights) whose separation power is listed beside GENERATED's")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="report directory: metrics.json, report.md, plots/")
@click.option("--backend", type=click.Choice(BACKEND_NAMES), default="numpy", show_default=True,
              help="where the classifier test runs")
@click.option("--max-showers", type=click.IntRange(min=10), default=None,
              help="read at most this many showers (the first ones) of each file")
@click.option("--seed", default=0, show_default=True, help="seed of the classifier's splits and weights")
@click.option("--binning", type=click.Path(exists=True, dir_okay=False), default=None,
              help="CaloChallenge binning XML, for challenge files without a geometry attribute")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="classifier epochs (default 30, early stop after 10 without improvement)")
@click.option("--spec-classifier", is_flag=True,
              help="use the CaloChallenge classifier (3 x 2048, Adam 2e-4, batch 1000): slow on a CPU")
@click.option("--no-classifier", is_flag=True, help="skip the classifier tests")
@click.option("--no-plots", is_flag=True, help="skip the PNG plots")
def evaluate(reference, generated, train, baseline, out, backend, max_showers, seed, binning, epochs, spec_classifier,
             no_classifier, no_plots):
    """Compare GENERATED with REFERENCE showers: the CaloGAN observables (separation power, KS; inclusive
    and per energy range), FPD and KPD on the high-level features, the cell-energy spectrum per layer,
    classifier tests on low- and high-level features (AUC), a memorisation check against --train, a
    baseline (--baseline) side by side, and plots. Writes OUT/metrics.json, OUT/report.md and
    OUT/plots/*.png."""
    from calosim.cli.main import run_library_call
    from calosim.evaluate.classifier import ClassifierConfig
    from calosim.evaluate.report import evaluate as run_evaluate
    from calosim.evaluate.report import format_summary

    config = ClassifierConfig.spec() if spec_classifier else ClassifierConfig()
    if epochs is not None:
        config.epochs = epochs
    metrics = run_library_call(run_evaluate, reference, generated, out, train_path=train, backend=backend,
                               max_showers=max_showers, seed=seed, binning=binning, classifier_config=config,
                               run_classifier=not no_classifier, make_plots=not no_plots, baseline_path=baseline)
    click.echo(format_summary(metrics))
    click.echo(f"\nreport: {out}/report.md")
