"""Hotline exports saved in GBK (as many 12345 systems write them) go through the importer as real GBK files."""

from __future__ import annotations

import csv
from datetime import date, timedelta

import psycopg
import pytest

from gis.intake.importer import import_file

HEADER = ["工单编号", "受理时间", "诉求类别", "诉求内容", "事发地址", "经度", "纬度", "来电人", "联系电话"]


def _point(url: str) -> tuple[float, float]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM micro_grid "
                            "WHERE valid_to IS NULL ORDER BY code LIMIT 1) m").fetchone()


def test_a_gbk_export_is_read_as_gbk(fresh_city_db, tmp_path):
    lon, lat = _point(fresh_city_db)
    path = tmp_path / "12345导出.csv"
    rows = [
        ["GBK-1", "2025-06-01 08:00:00", "电梯故障", "电梯停在三楼，困住一位老人", "泰安市泰山区岱宗大街", lon, lat,
         "张先生", "13900000001"],
        ["GBK-2", "2025-06-01 09:30:00", "噪声扰民", "夜间施工噪音，影响休息", "泰安市泰山区东岳大街", lon, lat,
         "李女士", "13900000002"],
        ["GBK-3", "2025-06-01 10:00:00", "不存在的类别", "无法归类", "", lon, lat, "王先生", "13900000003"],
    ]
    with path.open("w", encoding="gbk", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    raw = path.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # really GBK, not UTF-8
    rejected = tmp_path / "rejected.csv"
    report = import_file(fresh_city_db, path, rejected_path=rejected)
    assert (report.rows_read, report.imported, report.rejected) == (3, 2, 1)
    with psycopg.connect(fresh_city_db) as conn:
        stored = conn.execute("SELECT external_id, description, address, reporter_name, category_code "
                              "FROM complaint WHERE external_id LIKE 'GBK-%' ORDER BY external_id").fetchall()
    assert [(r[0], r[1], r[2], r[3]) for r in stored] == [
        ("GBK-1", "电梯停在三楼，困住一位老人", "泰安市泰山区岱宗大街", "张先生"),
        ("GBK-2", "夜间施工噪音，影响休息", "泰安市泰山区东岳大街", "李女士")]
    assert all(r[4] for r in stored)
    # the rejected row comes back readable, with its original text
    text = rejected.read_text(encoding="utf-8-sig")
    assert "不存在的类别" in text and "无法归类" in text


def test_a_gbk_export_whose_first_megabyte_is_ascii(fresh_city_db, tmp_path):
    """English column names and a long ASCII stretch before the first Chinese text: the import still reads the
    file as GBK, or refuses it with a clear reason; it never fails half way with a decoding error."""
    from gis.errors import InvalidInput

    lon, lat = _point(fresh_city_db)
    path = tmp_path / "export.csv"
    with path.open("w", encoding="gbk", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ticket_no", "reported_at", "category", "description", "lon", "lat"])
        # 1,500 rows of 800 ASCII characters (1.2 MB), a week apart so that none is another's duplicate
        for n in range(1_500):
            day = date(1995, 1, 1) + timedelta(days=8 * n)
            writer.writerow([f"ASCII-{n}", f"{day} 08:00:00", "E0601", "leak " + "x" * 800, lon, lat])
        writer.writerow(["GBK-LATE", "2025-06-01 08:00:00", "E0601", "楼上漏水", lon, lat])
    assert path.read_bytes()[: 1 << 20].isascii()
    try:
        report = import_file(fresh_city_db, path)
    except InvalidInput as error:
        assert "GBK" in str(error) or "编码" in str(error) or "encoding" in str(error)
        return
    assert report.rows_read == 1_501
    with psycopg.connect(fresh_city_db) as conn:
        assert conn.execute("SELECT description FROM complaint WHERE external_id = 'GBK-LATE'").fetchone() == (
            "楼上漏水",)
