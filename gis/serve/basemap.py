"""A city's own base map (底图), served from one local file: an MBTiles database or a PMTiles v3 archive, of
raster tiles (PNG, JPEG, WebP) or vector tiles (Mapbox Vector Tile), configured once (GRIDGOV_BASEMAP).

Tiles leave exactly as they are stored. A vector tile stored gzip-compressed (the MBTiles convention, and
PMTiles archives whose tile compression is gzip) is sent with `Content-Encoding: gzip`, and decompressed only
for a client that does not accept gzip. MBTiles rows are TMS (row 0 in the south), so the row is flipped.

The PMTiles reader is written here rather than taken from the `pmtiles` package: it is about a hundred lines
(header, varint directories, leaf directories, gzip-compressed directories), its every refusal of a broken
file is a `SetupError` in Chinese naming the file, directories are cached, and the app gains no dependency.
The tests write their archives with the `pmtiles` package, an independent implementation of the format.

A file that is missing or unreadable is refused when the base map is opened (`open_basemap`): `gridgov serve`
refuses to start, /health names the fault, and tile requests answer 503 with the same reason, never a 500.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import sqlite3
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from gis.errors import InvalidInput, NotFound, SetupError
from gis.serve.tiles import check_tile_address

MEDIA_TYPES = {
    "pbf": "application/vnd.mapbox-vector-tile",
    "png": "image/png",
    "jpg": "image/jpeg",
    "webp": "image/webp",
}
"""The media type of each tile format."""
EXTENSIONS = {"pbf": ("pbf", "mvt"), "png": ("png",), "jpg": ("jpg", "jpeg"), "webp": ("webp",)}
"""The file extensions a tile address may carry for each format (none is also accepted)."""
FORMAT_NAMES = {"pbf": "矢量瓦片", "png": "PNG 栅格瓦片", "jpg": "JPEG 栅格瓦片", "webp": "WebP 栅格瓦片"}
DEFAULT_ATTRIBUTION = "底图：本地底图文件"
IMMUTABLE_MAX_AGE = 365 * 24 * 3600
"""Cache lifetime of a tile asked for with the file's current version (`?v=`): it never changes at that URL."""
REVALIDATE_MAX_AGE = 3600
"""Cache lifetime of a tile asked for without the version (then revalidated by its ETag)."""
GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class StoredTile:
    """One tile as the file holds it."""

    body: bytes
    gzipped: bool

    def decoded(self) -> bytes:
        """The tile without its gzip layer (for clients that do not accept gzip); SetupError when the stored
        bytes are no gzip stream."""
        if not self.gzipped:
            return self.body
        try:
            return gzip.decompress(self.body)
        except (OSError, EOFError, zlib.error):
            raise SetupError("底图文件中的这张瓦片已损坏（gzip 数据无法解压）") from None


@dataclass
class Basemap:
    """An opened base-map file: what it holds and how to read one tile."""

    path: Path
    kind: str
    """`mbtiles` or `pmtiles`."""
    format: str
    """A key of MEDIA_TYPES."""
    minzoom: int
    maxzoom: int
    bounds: tuple[float, float, float, float] | None
    name: str
    attribution: str
    vector_layers: list = field(default_factory=list)
    version: str = ""
    """Changes whenever the file does (its size, modification time and inode)."""
    reader: object = None

    @property
    def media_type(self) -> str:
        """The media type of this file's tiles."""
        return MEDIA_TYPES[self.format]

    def tile(self, z: int, x: int, y: int) -> StoredTile | None:
        """Tile z/x/y (XYZ scheme) as stored, or None when the file has none there."""
        if not self.minzoom <= z <= self.maxzoom:
            return None
        body = self.reader.tile(z, x, y)
        if not body:
            return None
        return StoredTile(body, body[:2] == GZIP_MAGIC)

    def close(self) -> None:
        """Release the file."""
        self.reader.close()


def _file_version(path: Path) -> str:
    stat = path.stat()
    return hashlib.blake2b(f"{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ino}".encode(), digest_size=6).hexdigest()


def _format_of(value: str, path: Path) -> str:
    value = (value or "").strip().lower()
    value = {"mvt": "pbf", "jpeg": "jpg"}.get(value, value)
    if value not in MEDIA_TYPES:
        raise SetupError(f"底图文件 {path.name} 的瓦片格式“{value or '未注明'}”不受支持（可用：pbf、png、jpg、webp）")
    return value


def _bounds(values, path: Path) -> tuple[float, float, float, float] | None:
    if values is None:
        return None
    try:
        west, south, east, north = (float(v) for v in values)
    except (TypeError, ValueError):
        raise SetupError(f"底图文件 {path.name} 的范围（bounds）不是四个数") from None
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise SetupError(f"底图文件 {path.name} 的范围（bounds）不在经纬度之内")
    return west, south, east, north


# --- MBTiles ----------------------------------------------------------------------------------------------------

class MBTilesReader:
    """Reads tiles from an MBTiles file (SQLite, read-only), one lock around its connection."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=0", uri=True, check_same_thread=False)
            self.metadata = dict(self.conn.execute("SELECT name, value FROM metadata").fetchall())
            self.conn.execute("SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles LIMIT 0").fetchall()
        except sqlite3.Error as error:
            raise SetupError(f"底图文件 {path.name} 不是可读的 MBTiles 文件（{error}）") from None
        self.lock = threading.Lock()

    def zoom_range(self) -> tuple[int, int]:
        """The least and largest zoom, from the metadata or else from the tiles."""
        try:
            return int(self.metadata["minzoom"]), int(self.metadata["maxzoom"])
        except (KeyError, ValueError):
            low, high = self.conn.execute("SELECT min(zoom_level), max(zoom_level) FROM tiles").fetchone()
            if low is None:
                raise SetupError(f"底图文件 {self.path.name} 中没有瓦片") from None
            return int(low), int(high)

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        """The stored bytes of tile z/x/y (XYZ; the file's rows are TMS)."""
        with self.lock:
            row = self.conn.execute(
                "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?",
                (z, x, (1 << z) - 1 - y)).fetchone()
        return bytes(row[0]) if row and row[0] is not None else None

    def close(self) -> None:
        """Close the SQLite connection."""
        self.conn.close()


def _open_mbtiles(path: Path) -> Basemap:
    reader = MBTilesReader(path)
    meta = reader.metadata
    minzoom, maxzoom = reader.zoom_range()
    bounds = meta.get("bounds")
    vector_layers = []
    if meta.get("json"):
        try:
            vector_layers = json.loads(meta["json"]).get("vector_layers", [])
        except (ValueError, AttributeError):
            raise SetupError(f"底图文件 {path.name} 的 json 元数据无法解析") from None
    return Basemap(path=path, kind="mbtiles", format=_format_of(meta.get("format", ""), path), minzoom=minzoom,
                   maxzoom=maxzoom, bounds=_bounds(bounds.split(",") if bounds else None, path),
                   name=meta.get("name", path.stem), attribution=meta.get("attribution", ""),
                   vector_layers=vector_layers, reader=reader)


# --- PMTiles v3 -------------------------------------------------------------------------------------------------

PMTILES_HEADER_BYTES = 127
PMTILES_TILE_TYPES = {1: "pbf", 2: "png", 3: "jpg", 4: "webp"}
COMPRESSION_NONE, COMPRESSION_GZIP = 1, 2
MAX_DIRECTORY_DEPTH = 4
"""The root directory and at most three levels of leaves, as the specification allows."""


def zxy_to_tile_id(z: int, x: int, y: int) -> int:
    """The PMTiles tile id of z/x/y: the tiles of all lower zooms, then the position on the Hilbert curve."""
    tile_id = ((1 << (2 * z)) - 1) // 3
    n = 1 << z
    d = 0
    s = n >> 1
    while s > 0:
        rx = 1 if x & s else 0
        ry = 1 if y & s else 0
        d += s * s * ((3 * rx) ^ ry)
        if ry == 0:  # rotate the quadrant
            if rx == 1:
                x, y = s - 1 - x, s - 1 - y
            x, y = y, x
        s >>= 1
    return tile_id + d


def _varints(data: bytes):
    """Yield the unsigned LEB128 varints of `data` one by one."""
    value = shift = 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        if byte & 0x80:
            shift += 7
            if shift > 63:
                raise ValueError("varint too long")
            continue
        yield value
        value = shift = 0
    if shift:
        raise ValueError("truncated varint")


def parse_directory(data: bytes) -> list[tuple[int, int, int, int]]:
    """A PMTiles directory's entries as (tile_id, offset, length, run_length), in tile id order."""
    numbers = _varints(data)
    count = next(numbers)
    if count > len(data):
        raise ValueError("entry count larger than the directory")
    ids, tile_id = [], 0
    for _ in range(count):
        tile_id += next(numbers)
        ids.append(tile_id)
    runs = [next(numbers) for _ in range(count)]
    lengths = [next(numbers) for _ in range(count)]
    entries: list[tuple[int, int, int, int]] = []
    for i in range(count):
        raw = next(numbers)
        offset = entries[i - 1][1] + entries[i - 1][2] if raw == 0 and i > 0 else raw - 1
        entries.append((ids[i], offset, lengths[i], runs[i]))
    return entries


def find_entry(entries: list[tuple[int, int, int, int]], tile_id: int) -> tuple[int, int, int, int] | None:
    """The entry holding `tile_id` (a tile, or a leaf directory when its run length is 0), or None."""
    low, high = 0, len(entries) - 1
    while low <= high:
        middle = (low + high) >> 1
        if entries[middle][0] < tile_id:
            low = middle + 1
        elif entries[middle][0] > tile_id:
            high = middle - 1
        else:
            return entries[middle]
    if high >= 0:
        entry = entries[high]
        if entry[3] == 0 or tile_id - entry[0] < entry[3]:
            return entry
    return None


class PMTilesReader:
    """Reads tiles from a PMTiles v3 archive on disk; directories are parsed once and kept (LRU)."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.file = open(path, "rb")  # noqa: SIM115 - kept open for the reader's life
        except OSError as error:
            raise SetupError(f"底图文件 {path.name} 无法打开（{error.strerror}）") from None
        self.lock = threading.RLock()  # one file position and one directory cache for every thread
        self.size = os.fstat(self.file.fileno()).st_size
        self.directories: OrderedDict[tuple[int, int], list] = OrderedDict()
        head = self._read(0, PMTILES_HEADER_BYTES)
        if len(head) < PMTILES_HEADER_BYTES or head[:7] != b"PMTiles" or head[7] != 3:
            self.file.close()
            raise SetupError(f"底图文件 {path.name} 不是 PMTiles 第 3 版文件")
        number = lambda at: int.from_bytes(head[at:at + 8], "little")  # noqa: E731
        signed = lambda at: int.from_bytes(head[at:at + 4], "little", signed=True) / 1e7  # noqa: E731
        self.root = (number(8), number(16))
        self.metadata_at = (number(24), number(32))
        self.leaves_offset = number(40)
        self.data_offset = number(56)
        self.internal_compression, self.tile_compression, tile_type = head[97], head[98], head[99]
        self.minzoom, self.maxzoom = head[100], head[101]
        self.bounds = (signed(102), signed(106), signed(110), signed(114))
        if self.internal_compression not in (COMPRESSION_NONE, COMPRESSION_GZIP):
            self.file.close()
            raise SetupError(f"底图文件 {path.name} 的目录压缩方式不受支持（仅支持不压缩或 gzip）")
        if self.tile_compression not in (0, COMPRESSION_NONE, COMPRESSION_GZIP):
            self.file.close()
            raise SetupError(f"底图文件 {path.name} 的瓦片压缩方式不受支持（仅支持不压缩或 gzip）")
        if tile_type not in PMTILES_TILE_TYPES:
            self.file.close()
            raise SetupError(f"底图文件 {path.name} 的瓦片类型不受支持（可用：矢量瓦片、PNG、JPEG、WebP）")
        self.format = PMTILES_TILE_TYPES[tile_type]
        try:
            self.metadata = json.loads(self._internal(*self.metadata_at) or b"{}")
            self._directory(*self.root)
        except (ValueError, StopIteration, OSError, EOFError, gzip.BadGzipFile):
            self.file.close()
            raise SetupError(f"底图文件 {path.name} 已损坏（目录或元数据无法读取）") from None

    def _read(self, offset: int, length: int) -> bytes:
        if offset + length > self.size:
            raise EOFError("beyond the end of the archive")
        with self.lock:
            self.file.seek(offset)
            return self.file.read(length)

    def _internal(self, offset: int, length: int) -> bytes:
        data = self._read(offset, length)
        return gzip.decompress(data) if self.internal_compression == COMPRESSION_GZIP else data

    def _directory(self, offset: int, length: int) -> list:
        key = (offset, length)
        with self.lock:
            found = self.directories.get(key)
            if found is None:
                found = parse_directory(self._internal(offset, length))
                self.directories[key] = found
                if len(self.directories) > 256:
                    self.directories.popitem(last=False)
            else:
                self.directories.move_to_end(key)
            return found

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        """The stored bytes of tile z/x/y, following leaf directories; None when the archive has none."""
        tile_id = zxy_to_tile_id(z, x, y)
        offset, length = self.root
        try:
            for _ in range(MAX_DIRECTORY_DEPTH):
                entry = find_entry(self._directory(offset, length), tile_id)
                if entry is None:
                    return None
                if entry[3] > 0:
                    return self._read(self.data_offset + entry[1], entry[2])
                offset, length = self.leaves_offset + entry[1], entry[2]
        except (ValueError, StopIteration, EOFError, gzip.BadGzipFile) as error:
            raise SetupError(f"底图文件 {self.path.name} 已损坏（{type(error).__name__}）") from None
        return None

    def close(self) -> None:
        """Close the archive."""
        self.file.close()


def _open_pmtiles(path: Path) -> Basemap:
    reader = PMTilesReader(path)
    meta = reader.metadata if isinstance(reader.metadata, dict) else {}
    bounds = reader.bounds if reader.bounds != (0.0, 0.0, 0.0, 0.0) else None
    return Basemap(path=path, kind="pmtiles", format=reader.format, minzoom=reader.minzoom, maxzoom=reader.maxzoom,
                   bounds=_bounds(bounds, path), name=str(meta.get("name", path.stem)),
                   attribution=str(meta.get("attribution", "")), vector_layers=meta.get("vector_layers", []),
                   reader=reader)


# --- opening and serving ----------------------------------------------------------------------------------------

def open_basemap(path: str | Path, attribution: str = "") -> Basemap:
    """Open a base-map file (MBTiles or PMTiles v3, told apart by their first bytes); SetupError in Chinese when
    it is missing, unreadable or of an unsupported kind."""
    path = Path(path)
    if not path.exists():
        raise SetupError(f"底图文件不存在：{path}（请检查 GRIDGOV_BASEMAP）")
    if not path.is_file():
        raise SetupError(f"底图路径不是文件：{path}（请检查 GRIDGOV_BASEMAP）")
    try:
        with open(path, "rb") as handle:
            magic = handle.read(16)
    except OSError as error:
        raise SetupError(f"底图文件无法读取：{path}（{error.strerror}）") from None
    if magic.startswith(b"PMTiles"):
        basemap = _open_pmtiles(path)
    elif magic.startswith(b"SQLite format 3"):
        basemap = _open_mbtiles(path)
    else:
        raise SetupError(f"底图文件 {path.name} 既不是 MBTiles 也不是 PMTiles 文件")
    basemap.version = _file_version(path)
    if attribution:
        basemap.attribution = attribution
    basemap.attribution = basemap.attribution or DEFAULT_ATTRIBUTION
    return basemap


def parse_tile_address(z: str, x: str, y: str, basemap: Basemap) -> tuple[int, int, int]:
    """z/x/y of a request (y may end in an extension of the file's format); InvalidInput in Chinese when they are
    not whole numbers, lie outside the tile matrix or name another format."""
    stem, dot, extension = y.partition(".")
    if dot and extension.lower() not in EXTENSIONS[basemap.format]:
        raise InvalidInput(f"本底图是{FORMAT_NAMES[basemap.format]}（.{EXTENSIONS[basemap.format][0]}），"
                           f"没有 .{extension} 格式的瓦片")
    numbers = []
    for name, value in (("z", z), ("x", x), ("y", stem)):
        if not (value.isascii() and value.isdigit()) or len(value) > 9:
            raise InvalidInput(f"瓦片坐标 {name} 应为非负整数，而不是“{value}”")
        numbers.append(int(value))
    check_tile_address(*numbers)
    return numbers[0], numbers[1], numbers[2]


def tilejson(basemap: Basemap, base_url: str) -> dict:
    """TileJSON 3.0 of the base map; its tile URL carries the file's version, so tiles can be cached for good."""
    extension = EXTENSIONS[basemap.format][0]
    document = {
        "tilejson": "3.0.0",
        "name": basemap.name,
        "description": f"本市底图（{FORMAT_NAMES[basemap.format]}，{basemap.kind.upper()} 文件）",
        "attribution": basemap.attribution,
        "scheme": "xyz",
        "format": basemap.format,
        "tiles": [f"{base_url}/basemap/{{z}}/{{x}}/{{y}}.{extension}?v={basemap.version}"],
        "minzoom": basemap.minzoom,
        "maxzoom": basemap.maxzoom,
        "version": basemap.version,
    }
    if basemap.bounds is not None:
        document["bounds"] = list(basemap.bounds)
        west, south, east, north = basemap.bounds
        document["center"] = [(west + east) / 2, (south + north) / 2, min(max(basemap.minzoom, 13), basemap.maxzoom)]
    if basemap.format == "pbf":
        document["vector_layers"] = basemap.vector_layers
    return document


def etag(body: bytes) -> str:
    """The ETag of a tile's stored bytes."""
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def cache_control(basemap: Basemap, asked_version: str | None) -> str:
    """Immutable for the URL of the file's current version, revalidated by ETag otherwise."""
    if asked_version and asked_version == basemap.version:
        return f"public, max-age={IMMUTABLE_MAX_AGE}, immutable"
    return f"public, max-age={REVALIDATE_MAX_AGE}"


class BasemapService:
    """The configured base map of one app: opened on first use, reopened when the file changes (a rebuilt demo
    map), and a clear SetupError while it is missing or unreadable."""

    def __init__(self, path: str | Path | None, attribution: str = ""):
        self.path = Path(path) if path else None
        self.attribution = attribution
        self.basemap: Basemap | None = None
        self.lock = threading.Lock()

    @property
    def configured(self) -> bool:
        """Whether a base-map file is configured at all."""
        return self.path is not None

    def current(self) -> Basemap:
        """The opened base map; NotFound when none is configured, SetupError when its file cannot be read."""
        if self.path is None:
            raise NotFound("本部署未配置底图（GRIDGOV_BASEMAP）")
        with self.lock:
            opened = self.basemap
            try:
                changed = opened is None or _file_version(self.path) != opened.version
            except OSError:
                changed = True
            if changed:
                self.basemap = None
                if opened is not None:
                    opened.close()
                self.basemap = open_basemap(self.path, self.attribution)
            return self.basemap

    def status(self) -> dict:
        """For /health: `none` (not configured), `ok` with the file's kind and format, or `error` with why."""
        if self.path is None:
            return {"status": "none"}
        try:
            basemap = self.current()
        except SetupError as error:
            return {"status": "error", "detail": str(error)}
        return {"status": "ok", "kind": basemap.kind, "format": basemap.format,
                "minzoom": basemap.minzoom, "maxzoom": basemap.maxzoom}


def read_all_tiles(path: str | Path) -> dict[tuple[int, int, int], bytes]:
    """Every tile of an MBTiles file by XYZ address, as stored (for checks and tests)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {(z, x, (1 << z) - 1 - row): bytes(data) for z, x, row, data in
                conn.execute("SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles")}
    finally:
        conn.close()


def decompressed(body: bytes) -> bytes:
    """A tile's bytes without gzip, when it is gzipped."""
    return gzip.GzipFile(fileobj=io.BytesIO(body)).read() if body[:2] == GZIP_MAGIC else body
