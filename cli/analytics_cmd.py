"""`gridgov report STREET --period ...`, `gridgov analytics evaluate PERIOD` and `gridgov analytics proactive`."""

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


@analytics_app.command()
def proactive(
    month: str = typer.Option(None, "--month", help="Last month YYYY-MM (default: the newest with complaints)."),
    months: int = typer.Option(None, "--months", help="Months in the space-time cube (default "
                                                      "GRIDGOV_PROACTIVE_STEPS, 12)."),
    level: str = typer.Option("micro_grid", "--level", help="micro_grid or grid."),
    replay: bool = typer.Option(False, "--replay", help="Replay the complaints month by month instead (writes "
                                                         "nothing): complaints in pairs with a task, and how early."),
) -> None:
    """Open proactive tasks (主动治理任务) where emerging hot spots are, once per area × category."""
    from gis.analytics import proactive as core
    from gis.db.engine import database_url, sync_engine
    from gis.errors import GridgovError

    try:
        if replay:
            with sync_engine(database_url()).connect() as conn:
                figure = core.replay(conn, level, last=month, steps=months).figure
            for row in figure.rows:
                typer.echo(f"{row['month']}  tasks +{row['tasks_opened']:<4} open {row['tasks_open']:<5} "
                           f"complaints {row['complaints']:<6} in task pairs {row['in_task_pairs']:<6} "
                           f"median lead {row['median_lead_days']} d")
            typer.echo(" ".join(f"{key}={value}" for key, value in figure.meta.items()))
            return
        with sync_engine(database_url()).begin() as conn:
            figure = core.open_tasks(conn, "admin", (), "cli", month, level, months)
    except GridgovError as error:
        fail(error)
    for row in figure.rows:
        if row["opened"]:
            typer.echo(f"{row['id']:>6}  {row['area_code']}  {row['category_name']}  {row['pattern_zh']}")
    typer.echo(f"{figure.meta['month']}: opened {figure.meta['opened']}, already open {figure.meta['already_open']}")
