"""Reading one export file into a clean, UTF-8 CSV that DuckDB parses without surprises.

The reader is the step between "found" and "validated": whatever the file is (CSV in any of the
encodings a clinic's MIS writes, XLSX, Parquet, headerless or whitespace-aligned text), it hands the
loader a `ReadFile`: a UTF-8 CSV (or, for Parquet, a relation) with a header, the physical line of
every record, and the physical lines it could not read, each kept whole with its reason.

Two paths, one meaning:

* **Fast path** (almost every real file): a cheap scan in C-speed byte operations finds no NUL byte,
  no lone carriage return, no blank line and no line in another encoding; DuckDB's CSV reader then
  parses the file with no structural error and exactly one record per physical line. Line numbers
  are record positions.
* **Resynchronising path** (a file that fails any of that): a pass over the *physical lines*. Each
  line is decoded on its own (UTF-8 and Windows-1251 are told apart per line), parsed on its own,
  and a line that cannot stand as a record (a stray quote that would swallow the lines after it, a
  stray CR, a NUL byte, the wrong number of fields, an over-long field) is rejected whole with its
  reason; reading starts again at the next line. A quoted value may span lines (a comment typed with
  Enter) when the lines together form exactly one record of the right width, within
  `max_record_lines`, and no line in between is a complete record on its own. Good records are
  written to a clean CSV whose first column is the physical line number.

Either way: physical data lines = records handed on + lines rejected here + blank lines skipped.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from .errors import ConfigError, PatientbaseError

LINE_COLUMN = "_pb_line"
CHUNK = 1 << 22
#: Default limits for one record (mapping keys `max_record_lines`, `max_field_chars`).
MAX_RECORD_LINES = 20
MAX_FIELD_CHARS = 20_000

# Bytes that can start a multi-byte UTF-8 sequence followed by a continuation byte: where a
# Windows-1251 file holds none, no line of it can be UTF-8 text.
_UTF8_PAIR = re.compile(rb"[\xc2-\xf4][\x80-\xbf]")
_MOJIBAKE = re.compile("[ÐÑ][\u0080-\u00bf]|Ã.|â€|\ufffd|[РС][ђ-џЂ-Џ]")


@dataclass
class Reject:
    line: int
    raw: str
    reason: str


@dataclass
class ReadFile:
    """What the reader hands the loader for one export file."""

    header: list[str]
    line_from_column: bool  # True: LINE_COLUMN holds each record's physical line; else position + 1
    rejects: list[Reject] = field(default_factory=list)
    physical_lines: int = 0  # data lines (header excluded)
    blank_lines: int = 0
    notes: list[str] = field(default_factory=list)
    fast: bool = True
    encoding: str = "utf-8"
    why: str = ""  # why the resynchronising path was taken


# --------------------------------------------------------------------------------------------------
# Encodings


def _norm_encoding(name: str) -> str:
    name = name.lower().replace("_", "-")
    return {"utf8": "utf-8", "utf-8-sig": "utf-8", "windows-1251": "cp1251", "win-1251": "cp1251"}.get(name, name)


def _header_bytes(path: Path) -> bytes:
    with path.open("rb") as fh:
        first = fh.readline(1 << 20)
    if first.startswith(codecs.BOM_UTF8):
        first = first[len(codecs.BOM_UTF8):]
    return first.rstrip(b"\r\n")


def header_encoding(path: Path, declared: str) -> str:
    """The file's encoding: the mapping's, or for `auto` what the header line alone decodes as."""
    declared = _norm_encoding(declared)
    if declared != "auto":
        try:
            codecs.lookup(declared)
        except LookupError:
            raise ConfigError(f"{path.name}: unknown encoding {declared!r} in the mapping.") from None
        return declared
    try:
        _header_bytes(path).decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        return "cp1251"


def decode_line(raw: bytes, encoding: str) -> tuple[str | None, str | None]:
    """(text, None) or (None, reason). A line is read in the file's encoding; a UTF-8 line in a
    Windows-1251 file and a Windows-1251 line in a UTF-8 file are told apart and decoded correctly."""
    if encoding == "utf-8":
        try:
            return raw.decode("utf-8"), None
        except UnicodeDecodeError:
            try:
                return raw.decode("cp1251"), None
            except UnicodeDecodeError:
                return None, "bytes that are neither UTF-8 nor Windows-1251"
    if encoding == "cp1251" and _UTF8_PAIR.search(raw):
        try:
            return raw.decode("utf-8"), None
        except UnicodeDecodeError:
            pass
    try:
        return raw.decode(encoding), None
    except UnicodeDecodeError:
        try:
            return raw.decode("utf-8"), None
        except UnicodeDecodeError:
            return None, f"bytes that are neither {encoding} nor UTF-8"


def shown(raw: bytes, encoding: str = "utf-8") -> str:
    """A physical line as text for raw.load_rejects, whole: undecodable bytes and NUL as \\xNN."""
    text, _ = decode_line(raw, encoding)
    if text is None:
        text = raw.decode("utf-8", errors="backslashreplace")
    return text.replace("\x00", "\\x00")


# --------------------------------------------------------------------------------------------------
# The cheap scan


@dataclass
class Scan:
    newlines: int = 0
    ends_with_newline: bool = True
    clean: bool = True  # nothing the fast path cannot take
    why: str = ""


def quick_scan(path: Path, encoding: str) -> Scan:
    """Byte-level checks over the whole file, in chunks, at C speed (about 0.2 s per 60 MB).

    What DuckDB's reader already refuses row by row (bytes that are not UTF-8, blank lines, a quote
    that swallows lines) shows up as fewer records than lines and needs no check here; what it might
    read silently wrong (a NUL byte, a lone CR taken as a line break, a UTF-8 line in a Windows-1251
    file) does."""
    scan = Scan()
    tail = b""
    last = b""
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(CHUNK)
            if not chunk:
                break
            last = chunk
            scan.newlines += chunk.count(b"\n")
            if scan.clean:
                joined = tail + chunk
                if b"\x00" in chunk:
                    scan.clean, scan.why = False, "NUL byte"
                elif b"\r" in joined and (
                        joined.count(b"\r") != joined.count(b"\r\n") + (1 if joined.endswith(b"\r") else 0)):
                    scan.clean, scan.why = False, "lone carriage return"
                elif encoding == "cp1251" and not chunk.isascii() and _UTF8_PAIR.search(joined):
                    scan.clean, scan.why = False, "possible UTF-8 line in a Windows-1251 file"
                tail = chunk[-2:]
    scan.ends_with_newline = last.endswith(b"\n") if last else True
    if scan.clean and last.endswith(b"\r"):
        scan.clean, scan.why = False, "lone carriage return"
    return scan


# --------------------------------------------------------------------------------------------------
# The resynchronising pass


def _split_physical(data: bytes) -> list[bytes]:
    """Physical lines: split at LF (a CR before it belongs to the line ending); a file with CR line
    endings only (old Mac) is split at CR."""
    if b"\n" not in data and b"\r" in data:
        lines = data.split(b"\r")
    else:
        lines = data.split(b"\n")
        lines = [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


class _Dialect(csv.Dialect):
    delimiter = ","
    quotechar = '"'
    escapechar = None
    doublequote = True
    skipinitialspace = False
    lineterminator = "\n"
    quoting = csv.QUOTE_MINIMAL
    strict = True


def _dialect(delimiter: str, quote: str):
    if not quote:  # a mapping may say the export has no quoting at all
        return type("_D", (_Dialect,), {"delimiter": delimiter, "quotechar": None, "quoting": csv.QUOTE_NONE,
                                        "doublequote": False, "escapechar": "\\"})
    return type("_D", (_Dialect,), {"delimiter": delimiter, "quotechar": quote})


def _parse_one(text: str, dialect) -> tuple[list[str] | None, str | None, bool]:
    """(fields, error, is_open): parse text as exactly one record; is_open when a quoted value is
    still open at the end (the record may continue on the next line)."""
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), dialect))
    except csv.Error as exc:
        message = str(exc)
        is_open = "unexpected end of data" in message or "newline inside string" in message
        return None, f"broken quoting ({message})", is_open
    if len(rows) != 1:
        return None, "not one record", False
    return rows[0], None, False


#: A reader reports its progress through `tick(lines done, data lines in the file)`.
Tick = Callable[[int, int], None]
#: The line-by-line read reports progress every this many lines (a tick costs a few microseconds).
TICK_LINES = 10_000


def _no_tick(_done: int, _total: int) -> None:
    return None


def resync(path: Path, encoding: str, delimiter: str, quote: str, workdir: Path, display: str,
           max_record_lines: int = MAX_RECORD_LINES, max_field_chars: int = MAX_FIELD_CHARS,
           names: list[str] | None = None, whitespace: bool = False,
           tick: Tick = _no_tick) -> tuple[Path, list[str], list[Reject], int, int, int]:
    """The slow, certain read: (clean CSV path, header, rejects, data lines, blank lines, records).

    The clean CSV has the file's delimiter and quote, UTF-8, and the physical line as first column.
    A line without a quote character is checked by counting delimiters and written as it is (the
    common case, about 1 s per million lines); a line with quotes is parsed by Python's csv module
    (strict) and written back re-quoted."""
    data = path.read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    lines = _split_physical(data)
    del data
    start = 0
    if names is None:
        if not lines:
            raise PatientbaseError(f"{display}, line 1: the file is empty; expected a header row.")
        header = parse_header(lines[0], encoding, delimiter, quote, display, whitespace)
        start = 1
    else:
        header = list(names)
    reading = _Resync(lines, encoding, delimiter, quote, len(header), max_record_lines, max_field_chars, whitespace)
    target = workdir / f"{path.stem}.{uuid.uuid4().hex[:6]}.resync.csv"
    with target.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, _dialect(delimiter, quote))
        writer.writerow([LINE_COLUMN] + header)
        reading.write_records(fh, writer, start, tick)
    return target, header, reading.rejects, len(lines) - start, reading.blank, reading.records


class _Resync:
    """One file's physical lines read record by record (resync): the lines a record may span are
    decoded once and cached; rejects, blank lines and records are counted as they are met."""

    def __init__(self, lines: list[bytes], encoding: str, delimiter: str, quote: str, width: int,
                 max_record_lines: int, max_field_chars: int, whitespace: bool):
        self.lines = lines
        self.encoding = encoding
        self.delimiter = delimiter
        self.quote = quote
        self.width = width
        self.max_record_lines = max_record_lines
        self.max_field_chars = max_field_chars
        self.whitespace = whitespace
        self.dialect = _dialect(delimiter, quote)
        self.texts: dict[int, tuple[str | None, str | None]] = {}
        self.rejects: list[Reject] = []
        self.blank = 0
        self.records = 0

    def prepared(self, i: int) -> tuple[str | None, str | None]:
        """(text, problem) of physical line i (0-based), cached for the lines a record may span."""
        got = self.texts.get(i)
        if got is None:
            raw = self.lines[i]
            if b"\x00" in raw:
                got = (None, "NUL byte in the line")
            elif b"\r" in raw:
                got = (None, "stray carriage return (CR) inside the line")
            else:
                got = decode_line(raw, self.encoding)
            self.texts[i] = got
        return got

    def record(self, text: str) -> tuple[list[str] | None, str | None, bool]:
        if self.whitespace:
            return text.split(), None, False
        return _parse_one(text, self.dialect)

    def reject(self, i: int, reason: str) -> None:
        self.rejects.append(Reject(i + 1, shown(self.lines[i], self.encoding), reason))

    def write_records(self, fh, writer, start: int, tick: Tick = _no_tick) -> None:
        """Write every record from physical line `start` on: line number first, then the fields."""
        write = fh.write
        delimiter, quote, width = self.delimiter, self.quote, self.width
        i = start
        n = len(self.lines)
        next_tick = start + TICK_LINES
        while i < n:
            if i >= next_tick:
                tick(i - start, n - start)
                next_tick = i + TICK_LINES
            text, problem = self.prepared(i)
            self.texts.pop(i, None)
            if problem is not None:
                self.reject(i, problem)
                i += 1
                continue
            if not self.whitespace and (not quote or quote not in text):
                # the common case: no quoting, so fields are what the delimiters say
                count = text.count(delimiter) + 1
                if count == width and len(text) <= self.max_field_chars:
                    write(f"{i + 1}{delimiter}{text}\n")
                    self.records += 1
                    i += 1
                    continue
                if not text.strip():
                    self.blank += 1
                    i += 1
                    continue
            elif not text.strip():
                self.blank += 1
                i += 1
                continue
            fields, error, used = self.parsed(i, text)
            if fields is None:
                self.reject(i, error or "cannot be read")
                i += 1
                continue
            writer.writerow([str(i + 1)] + fields)
            self.records += 1
            for k in range(i, i + used):
                self.texts.pop(k, None)
            i += used

    def parsed(self, i: int, text: str) -> tuple[list[str] | None, str | None, int]:
        """(fields, error, physical lines used) of the record starting at line i, checked for width and size."""
        fields, error, is_open = self.record(text)
        used = 1
        if is_open:
            fields, error, used = self.spanning(i, text)
        width = self.width
        if fields is not None and len(fields) != width:
            if len(fields) > width and not any(f.strip() for f in fields[width:]):
                fields = fields[:width]  # trailing delimiters: empty extra fields lose nothing
            else:
                error = f"expected {width} fields, found {len(fields)}"
                fields = None
        if fields is not None:
            longest = max((len(f) for f in fields), default=0)
            if longest > self.max_field_chars:
                error = (f"a value of {longest:,} characters, more than max_record_chars "
                         f"{self.max_field_chars:,} (mapping key max_field_chars)")
                fields = None
        return fields, error, used

    def spanning(self, i: int, text: str) -> tuple[list[str] | None, str | None, int]:
        """A quoted value open at the end of line i: try it as a value spanning the next lines."""
        fields, error, used = None, "a quoted value is not closed on this line (stray quote?)", 1
        joined = text
        for j in range(i + 1, min(len(self.lines), i + self.max_record_lines)):
            nxt, nproblem = self.prepared(j)
            if nproblem is not None:
                break
            whole, _, _ = self.record(nxt)
            if whole is not None and len(whole) == self.width:
                break  # the next line is a record of its own: line i is the broken one
            joined += "\n" + nxt
            got, _, still_open = self.record(joined)
            if still_open:
                continue
            if got is not None and len(got) == self.width:
                fields, error, used = got, None, j - i + 1
            break
        return fields, error, used


def parse_header(raw: bytes, encoding: str, delimiter: str, quote: str, display: str,
                 whitespace: bool = False) -> list[str]:
    """The header row, stripped and lower-cased; clear errors for what makes it unusable."""
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        other = "cp1251" if encoding == "utf-8" else "utf-8"
        raise PatientbaseError(
            f"{display}, line 1: the header is not valid {encoding} ({exc.reason}). Name the file's encoding "
            f"in the mapping: `encoding: {other}` (or `encoding: auto`)."
        ) from None
    if _MOJIBAKE.search(text):
        raise PatientbaseError(
            f"{display}, line 1: the header reads as garbage in {encoding} ({text[:60]!r}). The file is in "
            "another encoding: set `encoding` in the mapping (utf-8, cp1251, or auto)."
        )
    if whitespace:
        header = text.split()
    else:
        header = next(csv.reader([text], delimiter=delimiter, quotechar=quote), [])
    if not header or not any(h.strip() for h in header):
        raise PatientbaseError(f"{display}, line 1: the file is empty; expected a header row.")
    names = [h.strip().lower() for h in header]
    if len(names) == 1 and delimiter not in header[0] and any(d in header[0] for d in ";,\t"):
        raise PatientbaseError(
            f"{display}, line 1: the header is one column {header[0]!r}: the file is not delimited by "
            f"{delimiter!r}. Set `delimiter` in the mapping."
        )
    seen: set[str] = set()
    for i, name in enumerate(names, start=1):
        if not name:
            raise PatientbaseError(f"{display}, line 1, column {i}: the header has an empty column name.")
        if name in seen:
            raise PatientbaseError(f"{display}, line 1: column '{name}' appears twice in the header.")
        seen.add(name)
    return names


# --------------------------------------------------------------------------------------------------
# Reading one file: the fast path, falling back to resynchronising


def _q(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _columns_arg(names: list[str]) -> str:
    return "{" + ", ".join(f"{_q(h)}: 'VARCHAR'" for h in names) + "}"


def read_text_file(con: duckdb.DuckDBPyConnection, path: Path, into: str, *, encoding: str, delimiter: str,
                   quote: str, workdir: Path, display: str, max_record_lines: int = MAX_RECORD_LINES,
                   max_field_chars: int = MAX_FIELD_CHARS, names: list[str] | None = None,
                   whitespace: bool = False, force_slow: bool = False, tick: Tick = _no_tick) -> ReadFile:
    """Read a delimited (or whitespace-aligned) text export into temp table `into`; see the module docstring.
    `tick(done, total)` hears the data lines read so far of the file's total (a long file never looks stuck)."""
    encoding = header_encoding(path, encoding)
    scan = quick_scan(path, encoding)
    data_lines = scan.newlines + (0 if scan.ends_with_newline else 1) - (0 if names else 1)
    tick(0, data_lines)
    why = scan.why
    if scan.clean and not whitespace and not force_slow and names is None:
        header = parse_header(_header_bytes(path), encoding, delimiter, quote, display)
        read_path = path
        if encoding != "utf-8":
            read_path = workdir / f"{path.stem}.{uuid.uuid4().hex[:6]}.utf8.csv"
            with path.open(encoding=encoding, newline="") as src, read_path.open("w", encoding="utf-8", newline="") as dst:
                while block := src.read(CHUNK):
                    dst.write(block)
        # ignore_errors: a broken record is skipped rather than raised (an error would abort the load's
        # transaction); the count below then shows the mismatch and the file is read line by line.
        if True:
            con.execute(
                f"create or replace temp table {into} as select * from read_csv({_q(str(read_path))}, "
                f"auto_detect = false, header = true, columns = {_columns_arg(header)}, delim = {_q(delimiter)}, "
                f"quote = {_q(quote)}, escape = {_q(quote)}, strict_mode = true, null_padding = false, "
                f"ignore_errors = true)"
            )
            count, longest = con.execute(
                f"select count(*), max(greatest({', '.join('length(' + _qi(h) + ')' for h in header)})) from {into}"
            ).fetchone()
        if count == data_lines and (longest or 0) <= max_field_chars:
            tick(data_lines, data_lines)
            return ReadFile(header, False, [], data_lines, 0, encoding=encoding)
        why = why or ("a value longer than max_field_chars" if count == data_lines
                      else f"{count:,} records in {data_lines:,} lines")
        con.execute(f"drop table if exists {into}")
    target, header, rejects, lines, blank, records = resync(
        path, encoding, delimiter, quote, workdir, display, max_record_lines, max_field_chars, names, whitespace, tick)
    tick(lines, lines)
    out_delim = "," if whitespace else delimiter
    con.execute(
        f"create or replace temp table {into} as select * from read_csv({_q(str(target))}, auto_detect = false, "
        f"header = true, columns = {_columns_arg([LINE_COLUMN] + header)}, delim = {_q(out_delim)}, "
        f"quote = {_q(quote)}, escape = {_q(quote)}, strict_mode = false, ignore_errors = true)"
    )
    target.unlink(missing_ok=True)
    read = con.execute(f"select count(*) from {into}").fetchall()[0][0]
    if read != records:  # the clean file is written to be read back whole; say so if it is not
        raise PatientbaseError(
            f"{display}: {records:,} records were read line by line but {read:,} came back from the clean copy. "
            "This is a bug in patientbase's reader: please report it with the file's first lines.")
    return ReadFile(header, True, rejects, lines, blank, fast=False, encoding=encoding, why=why)


def read_parquet(con: duckdb.DuckDBPyConnection, path: Path, into: str, display: str) -> ReadFile:
    """A Parquet export: every column as text (the loader parses values the same way as from CSV);
    row N of the file is reported as line N + 1, as if it had a header line."""
    try:
        described = con.execute(f"describe select * from read_parquet({_q(str(path))})").fetchall()
    except duckdb.Error as exc:
        raise PatientbaseError(f"{display}: cannot read it as a Parquet file ({str(exc).splitlines()[0]}).") from None
    header = [r[0].strip().lower() for r in described]
    if len(set(header)) != len(header):
        raise PatientbaseError(f"{display}: two columns have the same name (ignoring case): {', '.join(header)}.")
    select = ", ".join(f"cast({_qi(r[0])} as VARCHAR) as {_qi(h)}" for r, h in zip(described, header))
    con.execute(f"create or replace temp table {into} as select {select} from read_parquet({_q(str(path))})")
    count = con.execute(f"select count(*) from {into}").fetchone()[0]
    return ReadFile(header, False, [], count, 0, encoding="parquet")


def _qi(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
