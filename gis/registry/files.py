"""Reading a registry file: CSV (UTF-8 with or without BOM, or GBK, detected) or XLSX, with an optional column
mapping {their header: our header}.

The bytes are read by the one reader the complaint imports use (gis.intake.importer.read_rows: encoding
detection, delimiter sniffing, spreadsheet cells as text), so both kinds of import read a file the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from gis.errors import InvalidInput
from gis.intake.importer import read_rows

SUFFIXES = (".csv", ".txt", ".tsv", ".xlsx", ".xlsm")


def parse_mapping(mapping: str | dict | list | None) -> dict[str, str]:
    """{their header: our header} from a dict, a JSON object, 'theirs=ours' pairs (a list, or one string
    separated by commas)."""
    if mapping is None or mapping == "" or mapping == []:
        return {}
    if isinstance(mapping, dict):
        pairs = mapping
    else:
        if isinstance(mapping, str) and mapping.strip().startswith("{"):
            try:
                pairs = json.loads(mapping)
            except json.JSONDecodeError as error:
                raise InvalidInput(f"列对应关系不是有效的 JSON：{error.msg}") from None
            if not isinstance(pairs, dict):
                raise InvalidInput("列对应关系应为 {\"文件中的列名\": \"模板列名\"}")
        else:
            items = mapping.split(",") if isinstance(mapping, str) else mapping
            pairs = {}
            for item in items:
                theirs, sep, ours = str(item).partition("=")
                if not sep or not theirs.strip() or not ours.strip():
                    raise InvalidInput(f"列对应关系“{item}”应写作 文件中的列名=模板列名")
                pairs[theirs.strip()] = ours.strip()
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in pairs.items()):
        raise InvalidInput("列对应关系的列名必须是文字")
    return {theirs.strip(): ours.strip() for theirs, ours in pairs.items()}


def read_table(path: Path, mapping: dict[str, str] | None = None) -> tuple[list[str], Iterator[tuple[int, dict]]]:
    """Our headers (after the mapping) and a stream of (row number in the file, {our header: cell text}).

    Row numbers count the header as row 1, as a spreadsheet shows them. Entirely blank rows are skipped (they
    are not records). A row with more cells than the header has is kept whole: the extra cells are reported
    under the header "(第 N 列)" so the load can reject the row instead of dropping them."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise InvalidInput(f"只能导入 .csv 或 .xlsx 文件，而不是“{path.name}”")
    header, rows = read_rows(path)
    mapping = mapping or {}
    unknown = sorted(set(mapping) - set(header))
    if unknown:
        raise InvalidInput(f"列对应关系中的列“{'”、“'.join(unknown)}”不在文件中")
    ours = [mapping.get(name, name) for name in header]
    seen: set[str] = set()
    for name in ours:
        if name and name in seen:
            raise InvalidInput(f"文件中有两列都是“{name}”")
        seen.add(name)

    def stream() -> Iterator[tuple[int, dict]]:
        for number, cells in enumerate(rows, start=2):
            values = ["" if cell is None else str(cell) for cell in cells]
            if not any(value.strip() for value in values):
                continue
            record = {}
            for index, value in enumerate(values):
                name = ours[index] if index < len(ours) else f"(第 {index + 1} 列)"
                record[name or f"(第 {index + 1} 列)"] = value
            yield number, record

    return ours, stream()
