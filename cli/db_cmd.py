"""`gridgov db up|down|status|url|upgrade`, `gridgov db replica add|remove|status` and `gridgov db partitions
convert|status|ensure|detach|attach`."""

from __future__ import annotations

import typer

from cli.common import fail
from gis.db import migrate
from gis.db.engine import database_url, embedded_cluster
from gis.errors import SetupError
from gis.settings import database_settings

db_app = typer.Typer(help="The database: the embedded PostGIS cluster, or GRIDGOV_DATABASE_URL.", no_args_is_help=True)


@db_app.command()
def up() -> None:
    """Create and start the embedded cluster (nothing to do when GRIDGOV_DATABASE_URL is set)."""
    try:
        url = database_url()
    except SetupError as error:
        fail(error)
    typer.echo(url)


@db_app.command()
def down() -> None:
    """Stop the embedded cluster."""
    if database_settings().database_url:
        typer.echo("GRIDGOV_DATABASE_URL is set: that server is not gridgov's to stop")
        return
    embedded_cluster().stop()
    typer.echo("stopped")


@db_app.command()
def status() -> None:
    """Say whether the database answers."""
    settings = database_settings()
    if settings.database_url:
        typer.echo(f"external: {settings.database_url}")
        return
    cluster = embedded_cluster()
    state = "running" if cluster.running() else ("stopped" if cluster.initialised() else "not created")
    typer.echo(f"embedded cluster in {cluster.data_dir}: {state}")
    if state == "running":
        typer.echo(cluster.url())
    else:
        raise typer.Exit(3)


@db_app.command()
def url() -> None:
    """Print the database URL (starting the embedded cluster if needed)."""
    up()


@db_app.command()
def upgrade() -> None:
    """Apply schema migrations (idempotent) and seed the category catalogue where it is empty."""
    from gis.layers.catalogue import seed_categories

    try:
        target = database_url()
        migrate.upgrade(target)
        added = seed_categories(target)
    except SetupError as error:
        fail(error)
    typer.echo(f"schema at {', '.join(migrate.current(target))}; {added} categories added")


replica_app = typer.Typer(help="Hot standbys of the embedded cluster (streaming replication) for read-only routes.",
                          no_args_is_help=True)
db_app.add_typer(replica_app, name="replica")


def _embedded_primary():
    if database_settings().database_url:
        fail(SetupError("GRIDGOV_DATABASE_URL is set: set up streaming replication on that server itself, then "
                        "list its standbys in GRIDGOV_DATABASE_READ_URLS"))
    cluster = embedded_cluster()
    if not cluster.running():
        fail(SetupError("the embedded cluster is not running: run `gridgov db up` first"))
    return cluster


@replica_app.command("add")
def replica_add(name: str = typer.Argument(None, help="r1, r2, ... when not given")) -> None:
    """Base-backup the embedded cluster into a new hot standby (its own port and data directory) and start it."""
    from gis.db import replicas

    cluster = _embedded_primary()
    try:
        standby = replicas.add_replica(cluster, name)
    except SetupError as error:
        fail(error)
    typer.echo(f"replica {standby.name} streaming on port {standby.port} in {standby.data_dir}")
    typer.echo(f"GRIDGOV_DATABASE_READ_URLS={standby.url()}")


@replica_app.command("remove")
def replica_remove(name: str) -> None:
    """Stop a replica, delete its data directory and drop its replication slot."""
    from gis.db import replicas

    cluster = _embedded_primary()
    try:
        replicas.remove_replica(cluster, name)
    except SetupError as error:
        fail(error)
    typer.echo(f"replica {name} removed")


@replica_app.command("status")
def replica_status() -> None:
    """Each replica's port, state and lag (bytes behind the primary's WAL, seconds behind its last transaction)."""
    from gis.db import replicas

    answers = replicas.replica_status(_embedded_primary())
    if not answers:
        typer.echo("no replicas")
        return
    typer.echo(f"{'name':<8} {'port':>6} {'state':<14} {'lag bytes':>12} {'lag s':>8}")
    for answer in answers:
        lag_bytes = "-" if answer["lag_bytes"] is None else str(answer["lag_bytes"])
        lag_s = "-" if answer["lag_seconds"] is None else f"{answer['lag_seconds']:.3f}"
        typer.echo(f"{answer['name']:<8} {answer['port'] or '-':>6} {answer['state']:<14} {lag_bytes:>12} {lag_s:>8}")


partitions_app = typer.Typer(help="Complaints partitioned by month (opt-in, for a province-size deployment).",
                             no_args_is_help=True)
db_app.add_typer(partitions_app, name="partitions")


def _ahead(ahead: int | None) -> int:
    from gis.settings import partition_settings

    return partition_settings().ahead if ahead is None else ahead


def _partitions_call(work):
    from gis.errors import GridgovError

    try:
        return work(database_url())
    except (GridgovError, SetupError) as error:
        fail(error)


@partitions_app.command("convert")
def partitions_convert(ahead: int = typer.Option(None, "--ahead", min=0, max=24,
                                                 help="months ahead to create (GRIDGOV_PARTITIONS_AHEAD, 3)")) -> None:
    """Convert `complaint` to monthly partitions in place, in one transaction (its rows moved, keys reworked)."""
    from cli.layers_cmd import _Bar, _progress  # the project's progress bars
    from gis.db import partitions

    with _progress() as progress:
        bar = _Bar(progress)
        done = _partitions_call(lambda url: partitions.convert(url, _ahead(ahead), progress=bar))
    typer.echo(f"converted: {done['partitions']} partitions (DEFAULT included), {done['rows']} complaints moved")


@partitions_app.command("status")
def partitions_status() -> None:
    """The partitions with their estimated rows, the rows in DEFAULT, the archived months and the months ahead."""
    from gis.db import partitions

    found = _partitions_call(partitions.status)
    if not found["partitioned"]:
        typer.echo("complaint is a single table (not converted)")
        return
    for partition in found["partitions"]:
        typer.echo(f"{partition['name']:<20} ~{partition['rows_estimate']:>10} rows")
    typer.echo(f"{'complaint_default':<20} {found['default_rows']:>11} rows")
    typer.echo(f"months ahead: {found['months_ahead']}; archived: {', '.join(found['archived']) or 'none'}")


@partitions_app.command("ensure")
def partitions_ensure(ahead: int = typer.Option(None, "--ahead", min=0, max=24,
                                                help="months ahead to create (GRIDGOV_PARTITIONS_AHEAD, 3)")) -> None:
    """Create the coming months' partitions, and one for each month DEFAULT holds complaints of."""
    from gis.db import partitions

    done = _partitions_call(lambda url: partitions.ensure(url, _ahead(ahead)))
    typer.echo(f"created: {', '.join(done['created']) or 'none'}; {done['moved']} rows moved out of DEFAULT")


@partitions_app.command("detach")
def partitions_detach(month: str = typer.Argument(..., help="YYYY-MM")) -> None:
    """Move a month (its complaints and every row hanging off them) to the `archive` schema."""
    from gis.db import partitions

    counts = _partitions_call(lambda url: partitions.detach(url, month))
    typer.echo(f"{month} archived: " + ", ".join(f"{table} {rows}" for table, rows in counts.items()))


@partitions_app.command("attach")
def partitions_attach(month: str = typer.Argument(..., help="YYYY-MM")) -> None:
    """Bring an archived month back, every row as it was."""
    from gis.db import partitions

    counts = _partitions_call(lambda url: partitions.attach(url, month))
    typer.echo(f"{month} restored: " + ", ".join(f"{table} {rows}" for table, rows in counts.items()))
