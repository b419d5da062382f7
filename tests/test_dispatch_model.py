"""The dispatch model: trained offline on the small city's history, it abstains below the threshold, fills a
missing category at intake only when confident, names its version on dispatch, and shows words from the text."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import socket

import joblib
import numpy as np
import psycopg
import pytest

from gis.dispatch import history, model, store
from gis.errors import Conflict
from gis.layers.catalogue import read_catalogue
from gis.settings import dispatch_settings
from tests.conftest import LiveServer

PASSWORD = "dispatch-test-pass-1"


@pytest.fixture(scope="module")
def trained(city_db):
    """The small city with one model version trained on its history, sockets blocked while it trains."""
    original = socket.socket.connect

    def refuse(self, *args, **kwargs):
        raise OSError("network blocked in this test")

    socket.socket.connect = refuse
    try:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", 9), timeout=1)  # the block is real for Python sockets
        result = store.train_from_history(city_db)
    finally:
        socket.socket.connect = original
    return {"url": city_db, "result": result}


@pytest.fixture(scope="module")
def server(trained):
    url = trained["url"]

    async def users():
        from gis.access.auth import create_user
        from gis.db.engine import async_engine

        engine = async_engine(url)
        async with engine.begin() as conn:
            await create_user(conn, "dispatch_admin", PASSWORD, "admin")
            await create_user(conn, "dispatch_planner", PASSWORD, "planner")
        await engine.dispose()

    asyncio.run(users())
    live = LiveServer(url)
    yield live
    live.stop()


def _token(server, name):
    with server.client() as client:
        return client.post("/auth/login", json={"username": name, "password": PASSWORD}).json()["access_token"]


def _point(url):
    with psycopg.connect(url) as conn:
        return conn.execute("""
            SELECT ST_X(ST_PointOnSurface(b.geom)), ST_Y(ST_PointOnSurface(b.geom)) FROM building b
            WHERE b.valid_to IS NULL ORDER BY b.code LIMIT 1 OFFSET 11""").fetchone()


def test_training_stores_a_version_with_its_figures(trained):
    result = trained["result"]
    with psycopg.connect(trained["url"]) as conn:
        version, samples, size = conn.execute(
            "SELECT version, samples, length(model) FROM dispatch_model ORDER BY version DESC LIMIT 1").fetchone()
    assert version == result.version and samples["train"] > samples["held_out"] > 0
    assert size > 10_000
    held_out = result.metrics["held_out"]["category"]
    assert held_out["model_top1"] > held_out["peer_top1"]
    assert 0 <= held_out["abstained"] < 1


def test_place_kinds_agree():
    assert store.PLACE_KINDS == model.PLACE_KINDS


def test_abstains_below_the_threshold(trained, monkeypatch):
    _, loaded = store.load_version(trained["url"])
    # a text the model is unsure of (two issues in one), so the threshold can sit on either side of it
    unsure = ("厨房漏水，楼上卫生间往下渗水", "楼道里堆满杂物还漏水", "门口有垃圾也很吵", "你好，麻烦处理一下",
              "电梯和暖气都有问题")
    raws = [loaded.suggest(text) for text in unsure]
    raw = min(raws, key=lambda r: abs(r["categories"][0]["confidence"] - 0.5))
    top = raw["categories"][0]["confidence"]
    assert 0.02 < top < 0.98
    monkeypatch.setenv("GRIDGOV_DISPATCH_MIN_CONFIDENCE", str(min(1.0, top + 0.01)))
    dispatch_settings.cache_clear()
    try:
        above = store.shaped(1, raw, {})
        assert above["confident"] is False and above["category_code"] is None
        assert len(above["categories"]) == 3  # a person chooses from these
        monkeypatch.setenv("GRIDGOV_DISPATCH_MIN_CONFIDENCE", str(max(0.0, top - 0.01)))
        dispatch_settings.cache_clear()
        below = store.shaped(1, raw, {})
        assert below["confident"] is True and below["category_code"] == raw["categories"][0]["code"]
    finally:
        dispatch_settings.cache_clear()


def test_the_words_come_from_the_text(trained):
    _, loaded = store.load_version(trained["url"])
    texts = ["楼上卫生间往下渗水天花板泡了", "单元楼道里堆满了纸箱和旧家具", "有人从窗户吊电线下来给电瓶车充电",
             "暖气片冰凉屋里才十二度", "业委会账目不公开"]
    for text in texts:
        found = loaded.suggest(text)
        cleaned = model.clean_text(text)
        assert found["category_words"], text
        for word in found["category_words"] + [w for w in found["party_words"] if not w.startswith("位置")]:
            assert word in cleaned, (word, text)


def test_one_text_is_the_vectoriser_s_row_and_the_batch_s_probabilities(trained):
    _, loaded = store.load_version(trained["url"])
    texts = history.load_handwritten().texts[::7] + ["", "暖气不热", "  楼道 灯坏了  "]
    cleaned = [model.clean_text(t) for t in texts]
    matrix = loaded.grams.matrix(cleaned).toarray()
    batch, labels = loaded.category_probabilities(cleaned)
    parties, party_labels = loaded.party_probabilities(cleaned, [None] * len(cleaned))
    for i, text in enumerate(texts):
        indices, weights = loaded.grams.row(cleaned[i])
        row = np.zeros(matrix.shape[1], dtype=np.float32)
        row[indices] = weights
        assert np.allclose(row, matrix[i], atol=1e-6), text
        found = loaded.suggest(text)
        first = found["categories"][0]
        assert first["code"] == labels[int(np.argmax(batch[i]))]
        assert first["confidence"] == pytest.approx(batch[i].max(), abs=1e-4)
        assert found["parties"][0]["confidence"] == pytest.approx(parties[i].max(), abs=1e-4)
        assert found["parties"][0]["party"] == party_labels[int(np.argmax(parties[i]))]


def test_the_party_follows_the_category_and_the_place(trained):
    _, loaded = store.load_version(trained["url"])
    leak = "楼上卫生间往下渗水，天花板泡了"
    managed = loaded.suggest(leak, "managed_compound")
    unmanaged = loaded.suggest(leak, "unmanaged_compound")
    assert managed["categories"][0]["code"] == unmanaged["categories"][0]["code"] == "E0601"
    assert managed["parties"][0]["party"] == "property_company"
    assert unmanaged["parties"][0]["party"] == "community"  # no company in the compound: the rules' community
    assert unmanaged["party_words"][-1] == model.PLACE_WORDS["unmanaged_compound"]
    heating = loaded.suggest("暖气片冰凉，室温只有十四度", "managed_compound")
    assert heating["parties"][0]["party"] == "utility:热力公司"


def test_the_history_s_parties_outweigh_a_rule_they_contradict():
    rows = [("E0601", "managed_compound", "community")] * 5 + [("E0602", "open_space", None)]
    routes = {("E0601", "managed_compound"): "property_company", ("E0602", "open_space"): "community"}
    parties, table = model._party_table(["E0601", "E0602"], rows, routes)
    managed = model.PLACE_KINDS.index("managed_compound")
    assert table[0, managed, parties.index("community")] == pytest.approx(5 / (5 + model.RULE_PSEUDO_COUNT))
    assert table[1, model.PLACE_KINDS.index("open_space"), parties.index("community")] == 1.0  # the rule alone
    assert np.allclose(table.sum(axis=2), 1.0)  # a pair with neither is spread evenly


def test_the_confidence_is_calibrated_on_the_training_history(trained):
    calibration = trained["result"].metrics["calibration"]["category"]
    assert calibration["rows"] > 100 and calibration["temperature"] != 1.0
    assert calibration["log_loss_after"] < calibration["log_loss_before"]
    held_out = trained["result"].metrics["held_out"]["category"]
    assert held_out["calibration_error"] < 0.1
    assert trained["result"].metrics["min_confidence"] == dispatch_settings().min_confidence


def test_a_model_of_an_older_format_is_not_loaded(trained):
    _, loaded = store.load_version(trained["url"])
    assert model.DispatchModel.from_bytes(loaded.to_bytes()).format == model.FORMAT
    buffer = io.BytesIO()
    joblib.dump(dataclasses.replace(loaded, format=1), buffer)
    with pytest.raises(Conflict, match="格式已过时"):
        model.DispatchModel.from_bytes(buffer.getvalue())


def test_the_handwritten_set_covers_every_category():
    rows = history.load_handwritten()
    assert len(rows) >= 300
    codes = {row["code"] for row in read_catalogue()}
    assert set(rows.categories) == codes
    assert all(rows.parties)


def test_a_missing_category_is_filled_only_when_confident(trained, server):
    url = trained["url"]
    from gis.intake.open311 import new_api_key

    key = new_api_key(url, "dispatch-test")
    lon, lat = _point(url)
    with server.client() as client:
        sure = client.post("/open311/v2/requests.json", data={
            "api_key": key, "lat": lat, "long": lon, "description": "暖气片冰凉，室温只有十四度，家里冷得穿棉袄"})
        assert sure.status_code == 201 or sure.status_code == 200, sure.text
        complaint_id = int(sure.json()[0]["service_request_id"])
        vague = client.post("/open311/v2/requests.json", data={
            "api_key": key, "lat": lat, "long": lon, "description": "你好"})
    assert vague.status_code == 400
    assert "请选择问题类别" in vague.json()[0]["description"]
    with psycopg.connect(url) as conn:
        category, filled, version, event = conn.execute("""
            SELECT c.category_code, s.filled_category, s.model_version,
                   (SELECT e.data FROM ticket_event e WHERE e.ticket_id = t.id AND e.action = 'model_suggestion')
            FROM complaint c JOIN complaint_suggestion s ON s.complaint_id = c.id
            JOIN ticket t ON t.complaint_id = c.id WHERE c.id = %s""", (complaint_id,)).fetchone()
        stored_vague = conn.execute("SELECT count(*) FROM complaint WHERE description = '你好'").fetchone()[0]
    assert category == "E0609" and filled is True and version == trained["result"].version
    assert event["suggested_by_model"] == version  # the automatic dispatch names the model that chose
    assert stored_vague == 0


def test_a_dispatch_records_the_model_version(trained, server):
    url = trained["url"]
    admin = _token(server, "dispatch_admin")
    with psycopg.connect(url) as conn:
        ticket_id, complaint_id, community = conn.execute("""
            SELECT t.id, t.complaint_id, t.community_code FROM ticket t
            WHERE t.state = 'registered' ORDER BY t.id LIMIT 1""").fetchone() or (None, None, None)
    if ticket_id is None:
        with psycopg.connect(url) as conn:
            ticket_id, complaint_id, community = conn.execute("""
                UPDATE ticket SET state = 'registered', assignee_kind = NULL, assignee_code = NULL
                WHERE id = (SELECT min(id) FROM ticket WHERE state = 'dispatched' AND community_code IS NOT NULL)
                RETURNING id, complaint_id, community_code""").fetchone()
    headers = {"Authorization": f"Bearer {admin}"}
    with server.client(headers=headers) as client:
        suggestion = client.post("/complaints/suggest", json={"text": "楼道灯不亮，晚上摔了一跤"})
        assert suggestion.status_code == 200, suggestion.text
        body = suggestion.json()
        assert len(body["categories"]) == 3 and body["category_words"]
        with psycopg.connect(url) as conn:
            conn.execute("DELETE FROM complaint_suggestion WHERE complaint_id = %s", (complaint_id,))
        asyncio.run(_record(url, complaint_id, body))
        got = client.get(f"/complaints/{complaint_id}/suggestion")
        assert got.status_code == 200 and got.json()["model_version"] == body["model_version"]
        done = client.post(f"/tickets/{ticket_id}/transitions", json={
            "action": "dispatch", "assignee": {"kind": "community", "code": community}})
        assert done.status_code == 200, done.text
    with psycopg.connect(url) as conn:
        data = conn.execute("SELECT data FROM ticket_event WHERE ticket_id = %s AND action = 'dispatch' "
                            "ORDER BY id DESC LIMIT 1", (ticket_id,)).fetchone()[0]
    assert data["suggested_by_model"] == body["model_version"]


async def _record(url, complaint_id, suggestion):
    from gis.db.engine import async_engine

    engine = async_engine(url)
    async with engine.begin() as conn:
        await store.record(conn, complaint_id, suggestion, False)
    await engine.dispose()


def test_staff_only(server):
    planner = _token(server, "dispatch_planner")
    with server.client() as client:
        assert client.post("/complaints/suggest", json={"text": "漏水"}).status_code in (401, 404)
        assert client.post("/complaints/suggest", json={"text": "漏水"},
                           headers={"Authorization": f"Bearer {planner}"}).status_code == 404
        admin = {"Authorization": f"Bearer {_token(server, 'dispatch_admin')}"}
        assert client.post("/complaints/suggest", json={"text": "  "}, headers=admin).status_code == 400
        odd_place = client.post("/complaints/suggest", json={"text": "漏水", "place": "月球"}, headers=admin)
        assert odd_place.status_code == 400


def test_make_demo_s_training_leaves_a_usable_version_alone(trained, monkeypatch):
    """`gridgov model train --if-missing` (what `make demo` runs) stores nothing when a usable version exists."""
    from typer.testing import CliRunner

    from cli.main import app
    from gis.db.engine import libpq_url
    from gis.settings import database_settings

    def versions() -> list[int]:
        with psycopg.connect(libpq_url(trained["url"])) as conn:
            return [row[0] for row in conn.execute("SELECT version FROM dispatch_model ORDER BY version")]

    before = versions()
    monkeypatch.setenv("GRIDGOV_DATABASE_URL", trained["url"])
    database_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["model", "train", "--if-missing"])
    finally:
        database_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert f"model version {before[-1]} is stored and usable" in result.output
    assert versions() == before
