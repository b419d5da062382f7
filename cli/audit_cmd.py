"""`gridgov audit reads`: who read personal data."""

from __future__ import annotations

from datetime import datetime

import typer

from cli.common import run_async

audit_app = typer.Typer(help="The personal-data access log.", no_args_is_help=True)


@audit_app.command("reads")
def reads(
    username: str | None = typer.Option(None, help="Only this user's reads."),
    resource: str | None = typer.Option(None, help="ticket, complaint, contact, party_organisation, ..."),
    record: str | None = typer.Option(None, help="Who read this record (a ticket or complaint id, ...)."),
    since: datetime | None = typer.Option(None, help="From this time on (ISO 8601)."),
    limit: int = typer.Option(50, help="How many rows, newest first."),
) -> None:
    """List reads of personal data, newest first: when, who (role), endpoint, what and how many."""
    from gis.access import audit
    rows = run_async(lambda conn: audit.personal_reads(conn, username=username, resource=resource, record_id=record,
                                                        since=since, limit=limit))
    for row in rows:
        ids = row["record_ids"] or []
        shown = ",".join(ids[:5]) + (f",… ({len(ids)})" if len(ids) > 5 else "")
        count = "?" if row["record_count"] is None else row["record_count"]
        typer.echo(f"{row['at']:%Y-%m-%d %H:%M:%S}  {row['username']:<20} {row['role']:<16} {row['method']} "
                   f"{row['endpoint']:<40} {row['resource']:<20} {count:>6}  {shown}")
