"""The street report as a job: asked for over HTTP, built in a worker thread off the event loop, watched by its
progress, and fetched as PDF when done.

Jobs live in the memory of the serving process (a `JobStore`): a restart forgets them, and the user asks again;
nothing of a report is personal data that would need a table's audit trail. At most `MAX_JOBS` are kept (the
oldest finished ones go first) and one report is built at a time (`WORKERS`), so a burst of requests queues rather
than starving the server of its two cores.

Each job has an owner and a scope: only its owner (or an administrator) sees it, anyone else gets NotFound as for
a job that does not exist; a street office may only ask for its own street (another street is NotFound too).
Street offices, planners and the administrator may ask for reports."""

from __future__ import annotations

import secrets
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import text

from gis.access.auth import Principal
from gis.analytics.periods import LOCAL_TIME, parse_period
from gis.errors import Forbidden, GridgovError, InvalidInput, NotFound

REPORTERS = frozenset({"admin", "street", "planner"})
"""Who may ask for a street report."""
MAX_JOBS = 50
WORKERS = 1
STATES_ZH = {"queued": "排队等候", "running": "正在生成", "done": "已完成", "failed": "生成失败"}


@dataclass
class Job:
    id: str
    owner_user_id: int | None
    street_code: str
    street_name: str
    period: str
    created_at: datetime
    state: str = "queued"
    fraction: float = 0.0
    progress_zh: str = "已提交，排队等候生成"
    error_zh: str | None = None
    finished_at: datetime | None = None
    pdf: bytes | None = field(default=None, repr=False)

    def public(self) -> dict:
        """What the owner reads about the job."""
        return {"id": self.id, "state": self.state, "state_zh": STATES_ZH[self.state],
                "fraction": round(self.fraction, 3), "progress_zh": self.progress_zh, "error_zh": self.error_zh,
                "street_code": self.street_code, "street_name": self.street_name, "period": self.period,
                "created_at": self.created_at, "finished_at": self.finished_at,
                "pdf": f"/reports/jobs/{self.id}/report.pdf" if self.state == "done" else None}


def current_half_year() -> str:
    """The current half-year as a period such as 2026H1, by today's date in Beijing time."""
    today = datetime.now(LOCAL_TIME).date()
    return f"{today.year}H{1 if today.month <= 6 else 2}"


async def resolve_street(conn, principal: Principal, street: str) -> dict:
    """The current street office named by `street`, its 9-digit code or its name, within the caller's scope."""
    if principal.role not in REPORTERS:
        raise Forbidden("只有街道、规划人员或管理员可以生成街道报告")
    street = (street or "").strip()
    if not street:
        raise InvalidInput("请选择街道：填写街道名称或 9 位街道编码")
    rows = (await conn.execute(text("""
        SELECT s.code, s.name, d.name AS district_name FROM street s
        LEFT JOIN district d ON d.code = s.district_code AND d.valid_to IS NULL
        WHERE s.valid_to IS NULL AND (s.code = :s OR s.name = :s) ORDER BY s.code"""), {"s": street})).mappings().all()
    if principal.role == "street":
        rows = [row for row in rows if row["code"] in principal.scope]
    if not rows:
        raise NotFound(f"没有找到街道“{street}”")
    if len(rows) > 1:
        choices = "、".join(f"{row['district_name'] or ''}{row['name']}（{row['code']}）" for row in rows)
        raise InvalidInput(f"名为“{street}”的街道不止一个，请用街道编码选择：{choices}")
    return dict(rows[0])


class JobStore:
    """The jobs of one serving process, built by a small pool of worker threads."""

    def __init__(self, database_url: str, workers: int = WORKERS):
        self.database_url = database_url
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="street-report")

    def submit(self, principal: Principal, street: dict, period_label: str | None) -> Job:
        period = parse_period(period_label or current_half_year()).label  # InvalidInput before any work
        job = Job(id=secrets.token_urlsafe(12), owner_user_id=principal.user_id, street_code=street["code"],
                  street_name=street["name"], period=period, created_at=datetime.now(LOCAL_TIME))
        with self._lock:
            self._forget_old()
            self._jobs[job.id] = job
        self._pool.submit(self._run, job, principal)
        return job

    def get(self, principal: Principal, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or not (principal.role == "admin" or
                               (principal.user_id is not None and job.owner_user_id == principal.user_id)):
            raise NotFound(f"没有报告任务 {job_id}")
        return job

    def pdf(self, principal: Principal, job_id: str) -> tuple[Job, bytes]:
        job = self.get(principal, job_id)
        if job.state != "done" or job.pdf is None:
            from gis.errors import Conflict

            raise Conflict(f"报告尚未生成完毕（{STATES_ZH[job.state]}），请稍后再下载")
        return job, job.pdf

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _forget_old(self) -> None:
        finished = sorted((j for j in self._jobs.values() if j.state in ("done", "failed")),
                          key=lambda j: j.created_at)
        while len(self._jobs) >= MAX_JOBS and finished:
            self._jobs.pop(finished.pop(0).id, None)

    def _progress(self, job: Job):
        def report(fraction: float, line: str) -> None:
            job.fraction, job.progress_zh = max(job.fraction, min(fraction, 1.0)), line
        return report

    def _run(self, job: Job, principal: Principal) -> None:
        from gis.analytics.report import build_report
        from gis.db.engine import sync_engine

        job.state, job.progress_zh = "running", "开始生成报告"
        engine = sync_engine(self.database_url)
        try:
            with tempfile.TemporaryDirectory(prefix="gridgov-report-") as folder, engine.connect() as conn:
                files = build_report(conn, job.street_code, job.period, Path(folder), pdf=True,
                                     progress=self._progress(job), principal=principal)
                job.pdf = files.pdf.read_bytes()
            job.state, job.fraction = "done", 1.0
            job.progress_zh = "报告已生成，可以下载"
        except GridgovError as error:
            job.state, job.error_zh = "failed", str(error)
            job.progress_zh = "报告生成失败"
        except Exception:  # noqa: BLE001 - a failed job says so; the server keeps serving
            import logging

            logging.getLogger("gridgov.reports").exception("street report %s failed", job.id)
            job.state, job.error_zh = "failed", "生成报告时发生内部错误，请稍后重试或联系管理员"
            job.progress_zh = "报告生成失败"
        finally:
            job.finished_at = datetime.now(LOCAL_TIME)
            engine.dispose()
