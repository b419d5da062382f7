"""Trained dispatch models as versions in the database, and the suggestion each complaint gets at intake.

`train_from_history` fits a new version on the city's history (the newest share held out and measured) and
stores it; the API and the intake paths use the newest version, read once per process and again only when a
newer one appears. A suggestion below `min_confidence` (gis.settings.DispatchSettings) abstains: it fills nothing
and a person chooses from its top three.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gis.access.auth import Principal, complaint_scope_sql
from gis.db.engine import libpq_url
from gis.errors import Conflict, InvalidInput, NotFound
from gis.settings import dispatch_settings

if TYPE_CHECKING:
    from gis.dispatch.model import DispatchModel

PLACE_KINDS = ("managed_compound", "unmanaged_compound", "open_space")
"""The place kinds a caller may name (gis.dispatch.model.PLACE_KINDS; not imported here, which would load
scikit-learn with the API)."""
NO_MODEL = "尚未训练派单模型，请先运行 gridgov model train"
MAX_TEXT = 4000

PARTY_KIND_NAMES = {"property_company": "物业公司", "community": "社区", "street_department": "街道",
                    "utility": "公用事业单位"}


def party_name(party: str) -> str:
    """A party label in Chinese: 物业公司, 社区, 街道·综合行政执法中队, 热力公司."""
    kind, _, department = party.partition(":")
    if kind == "street_department" and department:
        return f"街道·{department}"
    return department or PARTY_KIND_NAMES.get(kind, kind)


@dataclass
class Trained:
    """What one training run stored: the version, its row counts, held-out figures and timings."""

    version: int
    samples: dict
    metrics: dict
    seconds: dict


def train_from_history(url: str, progress: Callable[[str], None] | None = None,
                       trained_by: str | None = None) -> Trained:
    """Train a new version on the newest history of the database at `url`, measure it against the keyword peer
    on the held-out newest share, and store it. InvalidInput when there is too little history."""
    from gis.dispatch import history as history_module
    from gis.dispatch.model import train

    settings = dispatch_settings()
    started = time.perf_counter()
    if progress:
        progress("history")
    rows = history_module.load_history(url, settings.max_training_rows)
    if len(rows) < 50 or len(set(rows.categories)) < 2:
        raise InvalidInput(f"历史诉求太少（{len(rows)} 条），无法训练派单模型")
    fit_rows, test_rows = rows.split(settings.holdout_share)
    peer = history_module.Peer.load(url)
    seconds = {"loading": round(time.perf_counter() - started, 3)}
    started = time.perf_counter()
    model = train(fit_rows.texts, fit_rows.categories, fit_rows.parties, fit_rows.places, routes=peer.routes,
                  max_features=settings.max_features, progress=progress)
    seconds["training"] = round(time.perf_counter() - started, 3)
    if progress:
        progress("evaluation")
    started = time.perf_counter()
    metrics = {"min_confidence": settings.min_confidence,
               "held_out": history_module.evaluate(model, peer, test_rows, settings.min_confidence)}
    if history_module.HANDWRITTEN.exists():
        metrics["handwritten"] = history_module.evaluate(model, peer, history_module.load_handwritten(),
                                                         settings.min_confidence)
    seconds["evaluation"] = round(time.perf_counter() - started, 3)
    samples = {"train": len(fit_rows), "held_out": len(test_rows),
               "train_with_party": sum(1 for p in fit_rows.parties if p),
               "categories": len(model.category.labels), "parties": len(model.party_labels),
               "held_out_from": fit_rows.times[-1].isoformat() if len(fit_rows) and test_rows.times else None}
    metrics["seconds"] = seconds
    metrics["calibration"] = model.calibration
    content = model.to_bytes()
    if progress:
        progress("storing")
    with psycopg.connect(libpq_url(url)) as conn:
        version = conn.execute(
            "INSERT INTO dispatch_model (trained_by, samples, metrics, min_confidence, model_sha256, model) "
            "VALUES (%s, %s, %s, %s, %s, %s) RETURNING version",
            (trained_by, json.dumps(samples), json.dumps(metrics), settings.min_confidence,
             hashlib.sha256(content).hexdigest(), content)).fetchone()[0]
    return Trained(version, samples, metrics, seconds)


def load_version(url: str, version: int | None = None) -> tuple[int, "DispatchModel"]:
    """A stored version (the newest when None) and its model; NotFound when there is none."""
    from gis.dispatch.model import DispatchModel

    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute(
            "SELECT version, model FROM dispatch_model WHERE %(v)s::int IS NULL OR version = %(v)s "
            "ORDER BY version DESC LIMIT 1", {"v": version}).fetchone()
    if row is None:
        raise NotFound(NO_MODEL if version is None else f"没有第 {version} 版派单模型")
    try:
        return row[0], DispatchModel.from_bytes(bytes(row[1]))
    except Conflict as error:
        raise Conflict(f"第 {row[0]} 版{error}") from error


def evaluate_version(url: str, version: int | None = None) -> dict:
    """A stored version measured now, against the keyword peer, on the newest share of history (the rows it was
    not trained on, while no newer history has come in) and on the hand-written set."""
    from gis.dispatch import history as history_module

    settings = dispatch_settings()
    version, model = load_version(url, version)
    rows = history_module.load_history(url, settings.max_training_rows)
    _, test_rows = rows.split(settings.holdout_share)
    peer = history_module.Peer.load(url)
    out = {"version": version, "held_out": history_module.evaluate(model, peer, test_rows, settings.min_confidence)}
    if history_module.HANDWRITTEN.exists():
        out["handwritten"] = history_module.evaluate(model, peer, history_module.load_handwritten(),
                                                     settings.min_confidence)
    return out


_LOADED: dict[str, tuple[int, "DispatchModel | None"]] = {}


async def current_model(conn: AsyncConnection) -> tuple[int, "DispatchModel"] | None:
    """The newest stored version and its model, loaded once per process and again when a newer one is stored;
    None when there is none or the newest was stored in an older format (no suggestion until it is retrained)."""
    from gis.dispatch.model import DispatchModel

    newest = (await conn.execute(text("SELECT max(version) FROM dispatch_model"))).scalar_one()
    if newest is None:
        return None
    key = str(conn.engine.url)
    cached = _LOADED.get(key)
    if cached is None or cached[0] != newest:
        content = (await conn.execute(text("SELECT model FROM dispatch_model WHERE version = :v"),
                                      {"v": newest})).scalar_one()
        try:
            cached = (newest, DispatchModel.from_bytes(bytes(content)))
        except Conflict:  # stored by an older format: no suggestion until it is retrained
            cached = (newest, None)
        _LOADED[key] = cached
    return cached if cached[1] is not None else None


def shaped(version: int, raw: dict, names: dict[str, str]) -> dict:
    """A model's raw suggestion as the API gives it: names in Chinese, whether it is confident, and the category
    it would fill (None when it abstains)."""
    threshold = dispatch_settings().min_confidence
    categories = [{**c, "name_zh": names.get(c["code"], c["code"])} for c in raw["categories"]]
    parties = [{**p, "name_zh": party_name(p["party"])} for p in raw["parties"]]
    confident = bool(categories) and categories[0]["confidence"] >= threshold
    return {"model_version": version, "min_confidence": threshold, "confident": confident,
            "category_code": categories[0]["code"] if confident else None,
            "party_confident": bool(parties) and parties[0]["confidence"] >= threshold,
            "categories": categories, "parties": parties,
            "category_words": raw["category_words"], "party_words": raw["party_words"]}


async def _category_names(conn: AsyncConnection) -> dict[str, str]:
    return dict((await conn.execute(text("SELECT code, name_zh FROM category"))).all())


async def suggest(conn: AsyncConnection, complaint_text: str | None, place: str | None = None) -> dict | None:
    """The newest model's suggestion for a text, or None when no model has been trained yet."""
    loaded = await current_model(conn)
    if loaded is None:
        return None
    version, model = loaded
    return shaped(version, model.suggest(complaint_text or "", place), await _category_names(conn))


async def suggest_text(conn: AsyncConnection, complaint_text: str | None, place: str | None = None) -> dict:
    """A suggestion for a text typed by staff (POST /complaints/suggest): InvalidInput for an empty or overlong
    text, Conflict when no model has been trained."""
    complaint_text = (complaint_text or "").strip() if isinstance(complaint_text, str) else None
    if not complaint_text:
        raise InvalidInput("请提供诉求内容（text）")
    if len(complaint_text) > MAX_TEXT:
        raise InvalidInput(f"诉求内容最多 {MAX_TEXT} 个字")
    if place is not None and place not in PLACE_KINDS:
        raise InvalidInput(f"place 须为 {'、'.join(PLACE_KINDS)} 之一")
    found = await suggest(conn, complaint_text, place)
    if found is None:
        raise Conflict(NO_MODEL)
    return found


async def for_intake(conn: AsyncConnection, given_code: str | None, description: str | None
                     ) -> tuple[str | None, dict | None, bool]:
    """At intake of one report: (the category to store, the suggestion to keep, whether the model filled it).
    A category given is kept; a missing one is filled only when the model is confident, otherwise it stays None
    and the caller asks a person to choose. No model or no text: no suggestion."""
    suggestion = await suggest(conn, description) if (description or "").strip() else None
    if given_code or suggestion is None or not suggestion["confident"]:
        return given_code or None, suggestion, False
    return suggestion["category_code"], suggestion, True


def choose_message(suggestion: dict | None) -> str:
    """What a reporter is told when no category was given and the model abstained: choose one, with the model's
    top three as a hint when it has any."""
    if not suggestion:
        return "请选择问题类别（category_code）"
    hints = "、".join(f"{c['name_zh']}（{c['code']}）" for c in suggestion["categories"])
    return f"无法从描述可靠判断问题类别，请选择问题类别（category_code）；可能是：{hints}"


async def record(conn: AsyncConnection, complaint_id: int, suggestion: dict, filled: bool) -> None:
    """Keep a complaint's suggestion (in the caller's transaction); when it filled the category, the ticket's
    history gets a `model_suggestion` event naming the model version beside the intake's dispatch."""
    await conn.execute(text("""
        INSERT INTO complaint_suggestion (complaint_id, model_version, categories, parties, category_words,
                                          party_words, confident, filled_category)
        VALUES (:id, :version, CAST(:categories AS jsonb), CAST(:parties AS jsonb), CAST(:cw AS jsonb),
                CAST(:pw AS jsonb), :confident, :filled)
        ON CONFLICT (complaint_id) DO NOTHING"""), {
        "id": complaint_id, "version": suggestion["model_version"],
        "categories": json.dumps(suggestion["categories"], ensure_ascii=False),
        "parties": json.dumps(suggestion["parties"], ensure_ascii=False),
        "cw": json.dumps(suggestion["category_words"], ensure_ascii=False),
        "pw": json.dumps(suggestion["party_words"], ensure_ascii=False),
        "confident": suggestion["confident"], "filled": filled})
    if filled:
        # The history is append-only: the automatic dispatch the intake made is followed by the model's note.
        await conn.execute(text("""
            INSERT INTO ticket_event (ticket_id, at, actor, action, note, data)
            SELECT t.id, t.reported_at, 'system', 'model_suggestion', :note,
                   jsonb_build_object('suggested_by_model', CAST(:version AS int), 'category_code', CAST(:code AS text),
                                      'suggested_party', CAST(:party AS text))
            FROM ticket t WHERE t.complaint_id = :id"""), {
            "id": complaint_id, "version": suggestion["model_version"], "code": suggestion["category_code"],
            "party": suggestion["parties"][0]["party"] if suggestion["parties"] else None,
            "note": f"问题类别由派单模型第 {suggestion['model_version']} 版判定"})


async def dispatch_note(conn: AsyncConnection, complaint_id: int) -> dict:
    """What a dispatch event records of the suggestion behind it: the model version and the party it put first
    ({} when the complaint has none)."""
    row = (await conn.execute(text(
        "SELECT model_version, parties -> 0 ->> 'party' FROM complaint_suggestion WHERE complaint_id = :id"),
        {"id": complaint_id})).first()
    if row is None:
        return {}
    return {"suggested_by_model": row[0], "suggested_party": row[1]}


async def stored_suggestion(conn: AsyncConnection, principal: Principal, complaint_id: int) -> dict:
    """The suggestion kept with a complaint (GET /complaints/{id}/suggestion): staff in scope only, NotFound
    otherwise and when the complaint has none."""
    if not principal.is_staff:
        raise NotFound(f"没有诉求 {complaint_id}")
    scope, params = complaint_scope_sql(principal, "c")
    row = (await conn.execute(text(f"""
        SELECT s.*, c.category_code AS current_category
        FROM complaint c JOIN complaint_suggestion s ON s.complaint_id = c.id
        WHERE c.id = :id AND {scope}"""), {"id": complaint_id, **params})).mappings().first()
    if row is None:
        raise NotFound(f"诉求 {complaint_id} 没有派单建议")
    names = await _category_names(conn)
    threshold = dispatch_settings().min_confidence
    categories = [{**c, "name_zh": names.get(c["code"], c["code"])} for c in row["categories"]]
    parties = [{**p, "name_zh": party_name(p["party"])} for p in row["parties"]]
    return {"complaint_id": complaint_id, "model_version": row["model_version"], "min_confidence": threshold,
            "confident": row["confident"], "filled_category": row["filled_category"],
            "current_category": row["current_category"], "categories": categories, "parties": parties,
            "category_words": row["category_words"], "party_words": row["party_words"],
            "suggested_at": row["suggested_at"].isoformat()}


async def suggestion_to_show(conn: AsyncConnection, principal: Principal, complaint_id: int) -> dict | None:
    """What the review and dispatch views show for a complaint (GET /complaints/{id}/suggestion?or_newest=true): the
    suggestion kept at intake (`kept` true), else the newest model's for the complaint's text and place now; None
    when there is neither (no model trained yet, or no text). NotFound outside the caller's scope, as
    stored_suggestion."""
    if not principal.is_staff:
        raise NotFound(f"没有诉求 {complaint_id}")
    try:
        return {**await stored_suggestion(conn, principal, complaint_id), "kept": True}
    except NotFound:
        pass
    scope, params = complaint_scope_sql(principal, "c")
    row = (await conn.execute(text(f"""
        SELECT c.description,
               CASE WHEN t.compound_code IS NOT NULL AND t.property_company_id IS NOT NULL THEN 'managed_compound'
                    WHEN t.compound_code IS NOT NULL THEN 'unmanaged_compound'
                    WHEN c.geom IS NOT NULL AND c.placement <> 'review' THEN 'open_space' END
        FROM complaint c LEFT JOIN ticket t ON t.complaint_id = c.id
        WHERE c.id = :id AND {scope}"""), {"id": complaint_id, **params})).first()
    if row is None:
        raise NotFound(f"没有诉求 {complaint_id}")
    if not (row[0] or "").strip():
        return None
    found = await suggest(conn, row[0], row[1])
    return None if found is None else {**found, "complaint_id": complaint_id, "kept": False}
