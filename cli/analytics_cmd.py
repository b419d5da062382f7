"""`gridgov report STREET --period ...` and `gridgov analytics evaluate PERIOD`."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import fail

analytics_app = typer.Typer(help="Analytics: the red/black list and figures.", no_args_is_help=True)


def report(
    street: str = typer.Argument(..., help="Street office code (9 digits)."),
    period: str = typer.Option(..., "--period", help="YYYY, YYYYH1/H2, YYYYQ1-4, YYYY-MM or a date range."),
    out: Path = typer.Option(Path("reports"), "--out", help="Folder to write the HTML and PDF into."),
    pdf: bool = typer.Option(True, "--pdf/--no-pdf", help="Also print the PDF with headless Chromium."),
) -> None:
    """Write the printable report of a street office (HTML and PDF) with maps and charts."""
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from gis.analytics.report import build_report
    from gis.db.engine import database_url, sync_engine
    from gis.errors import GridgovError

    try:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), transient=True) as progress:
            progress.add_task(f"building the report of {street} for {period}", total=None)
            with sync_engine(database_url()).connect() as conn:
                files = build_report(conn, street, period, out, pdf=pdf)
    except GridgovError as error:
        fail(error)
    typer.echo(f"HTML: {files.html}")
    if files.pdf:
        typer.echo(f"PDF:  {files.pdf}")


@analytics_app.command()
def evaluate(period: str = typer.Argument(
        ..., help="Half-year, e.g. 2025H1, or a year (2025) for the year-end overall evaluation.")) -> None:
    """Run and store the red/black list of a half-year."""
    from gis.analytics.evaluation import evaluate as run
    from gis.db.engine import database_url, sync_engine
    from gis.errors import GridgovError

    try:
        with sync_engine(database_url()).begin() as conn:
            figure = run(conn, period)
    except GridgovError as error:
        fail(error)
    for row in figure.rows:
        mark = {"red": "红榜 red", "black": "黑榜 black"}.get(row["standing"], "")
        exit_flag = "  exit flagged" if row["flagged_for_exit"] else ""
        typer.echo(f"{row['rank']:>3}  {row['total_score']:6.2f}  {row['name']}  {mark}{exit_flag}")
