"""`gridgov model train | evaluate`: the text model that suggests a complaint's category and responsible party."""

from __future__ import annotations

import json

import typer

from cli.common import fail

model_app = typer.Typer(help="The dispatch model: train it on the city's history, measure it.", no_args_is_help=True)

STEPS = ("history", "calibration", "category, place and party", "evaluation", "storing")
"""The training's stages as gis.dispatch reports them."""


def _table(title: str, figures: dict) -> None:
    """One set's figures, model beside the keyword peer."""
    typer.echo(f"{title}: {figures['rows']} rows ({figures.get('party_rows', 0)} with a known party)")
    for part in ("category", "party"):
        row = figures.get(part)
        if not row:
            continue
        typer.echo(f"  {part:9} model top-1 {row['model_top1']:.1%} top-3 {row['model_top3']:.1%} | "
                   f"peer top-1 {row['peer_top1']:.1%} top-3 {row['peer_top3']:.1%} | "
                   f"abstained {row['abstained']:.1%}, right when confident {row['accuracy_when_confident']:.1%}, "
                   f"calibration error {row['calibration_error']:.3f}")


@model_app.command("train")
def train(as_json: bool = typer.Option(False, "--json", help="Print the stored figures as JSON."),
          if_missing: bool = typer.Option(False, "--if-missing",
                                          help="Train only when no usable version is stored (as `make demo` does).")
          ) -> None:
    """Train a new version on the newest history (the newest share held out and measured) and store it; intake
    and the API use it from then on."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from gis.db.engine import database_url
    from gis.dispatch.store import load_version, train_from_history
    from gis.errors import Conflict, GridgovError, NotFound

    url = database_url()
    if if_missing:
        try:
            version, _ = load_version(url)
        except (NotFound, Conflict):
            pass  # none stored, or stored in an older format: train one
        else:
            typer.echo(f"model version {version} is stored and usable: left as it is")
            return
    try:
        with Progress(TextColumn("training: {task.description}"), BarColumn(), TimeElapsedColumn()) as progress:
            task = progress.add_task("history", total=len(STEPS))

            def step(name: str) -> None:
                progress.update(task, description=name, completed=STEPS.index(name) if name in STEPS else 0)

            trained = train_from_history(url, progress=step, trained_by="cli")
            progress.update(task, description="done", completed=len(STEPS))
    except GridgovError as error:
        fail(error)
    if as_json:
        typer.echo(json.dumps({"version": trained.version, "samples": trained.samples, "metrics": trained.metrics},
                              ensure_ascii=False, indent=1))
        return
    typer.echo(f"model version {trained.version}: trained on {trained.samples['train']} complaints, "
               f"tested on the newest {trained.samples['held_out']} ({trained.seconds['training']:.1f} s)")
    for name in ("held_out", "handwritten"):
        if name in trained.metrics:
            _table(name, trained.metrics[name])


@model_app.command("evaluate")
def evaluate(version: int = typer.Option(None, "--version", help="A stored version (the newest by default)."),
             as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON.")) -> None:
    """Measure a stored version against the keyword peer on held-out history and the hand-written set."""
    from gis.db.engine import database_url
    from gis.dispatch.store import evaluate_version
    from gis.errors import GridgovError

    try:
        figures = evaluate_version(database_url(), version)
    except GridgovError as error:
        fail(error)
    if as_json:
        typer.echo(json.dumps(figures, ensure_ascii=False, indent=1))
        return
    typer.echo(f"model version {figures['version']}")
    for name in ("held_out", "handwritten"):
        if name in figures:
            _table(name, figures[name])
