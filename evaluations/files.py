"""Reading labelled files into a Table: CSV, TSV, JSON Lines or JSON, plain or gzipped, from a path, bytes
or an uploaded file.

What a file may be, and what is refused (always with a message naming the row, and the column where
one is known, so the writer can fix the file):

* UTF-8, with or without a byte-order mark. Other encodings are refused, naming the first byte that is
  not UTF-8: guessing cp1252 or Latin-1 would turn some bytes into the wrong letters without telling
  anyone, and the examples would then be measured on text nobody wrote.
* CSV and TSV: the header is the first row that looks like one (mostly non-empty short cells, no two
  alike, the rows below no wider), so a disclaimer or title row above it is skipped; quoted cells may
  hold newlines. Row numbers are the rows a spreadsheet shows (a record whose cell holds newlines is one
  row). A "golden set" sheet with no header, where section rows holding only a category code ("SP0")
  label the numbered example rows below them, is read as the columns text / label / model answer.
* JSON Lines: one object per line; JSON: a list of objects, or an object holding one such list.
* Limits: LABELED_SET_MAX_BYTES for the file (the uncompressed size for gzip), MAX_EXAMPLE_CHARS for one
  cell, MAX_ROWS data rows.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.conf import settings

from evaluations.sets import MAX_EXAMPLE_CHARS, SetError

MAX_ROWS = 200_000  # data rows in one file
HEADER_SEARCH_ROWS = 20  # non-blank rows looked at for the header
MAX_HEADER_CELL = 80  # characters: a longer cell is a sentence, not a column name
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
FORMATS = ("csv", "tsv", "jsonl", "json")
EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
              ".jsonlines": "jsonl", ".json": "json"}
SECTION_COLUMNS = ["text", "label", "model answer"]

# A category code alone in a row ("SP0", "SP3 "), as the golden-set sheets write their section rows (the
# layout safeguard.firstpass.read_labeled_csv reads for the first pass).
_CODE = re.compile(r"[A-Za-z]{1,6}\d{1,3}(?:\.[a-z0-9]{1,3})?")
_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)?%?")


@dataclass
class Table:
    """A file's data rows as dicts keyed by its column names; `row_numbers[i]` is where rows[i] is in the
    file (1-based: a spreadsheet's row, a JSON Lines line, a JSON list's item)."""

    columns: list[str]
    rows: list[dict[str, Any]]
    row_numbers: list[int]
    name: str = ""
    format: str = "csv"
    layout: str = "header"  # "header", or "sections" (a golden-set sheet)
    header_row: int | None = None  # the header's row in a CSV/TSV file
    skipped_above: int = 0  # non-blank rows above the header (a disclaimer, a title)
    truncated: bool = False  # read with a row limit, and more rows follow
    notes: list[str] = field(default_factory=list)

    def records(self) -> Iterator[tuple[int, dict[str, Any]]]:
        return zip(self.row_numbers, self.rows, strict=True)

    def head(self, count: int) -> Table:
        """The same table cut to its first `count` rows."""
        return Table(columns=self.columns, rows=self.rows[:count], row_numbers=self.row_numbers[:count],
                     name=self.name, format=self.format, layout=self.layout, header_row=self.header_row,
                     skipped_above=self.skipped_above, truncated=self.truncated or len(self.rows) > count,
                     notes=self.notes)


def max_bytes() -> int:
    return int(settings.LABELED_SET_MAX_BYTES)


def read_table(source: str | Path | bytes | IO[bytes], *, name: str = "", limit: int | None = None) -> Table:
    """The table in a file. `source` is a path, the file's bytes, or an open binary file (an upload);
    `name` (else the path's) picks the format by extension, and the content decides when it says
    nothing. `limit` stops after that many data rows (previews); the limits still apply to what is read."""
    data, name = _read_bytes(source, name)
    if not data.strip():
        raise SetError("the file is empty")
    if data[:4] == ZIP_MAGIC:
        raise SetError("this is a zip file (an Excel workbook is one): save the sheet as “CSV UTF-8” and import that")
    fmt = _format_of(name, data)
    text = _decode(data, fmt)
    if not text.strip():
        raise SetError("the file is empty")
    if fmt == "jsonl":
        table = _read_json_lines(text, limit)
    elif fmt == "json":
        table = _read_json(text, limit)
    else:
        table = _read_delimited(text, "\t" if fmt == "tsv" else _delimiter(text), limit)
        table.format = fmt
    table.name = name
    if not table.rows:
        where = f"under its header (row {table.header_row})" if table.header_row else ""
        raise SetError(f"the file holds no data rows {where}".strip())
    return table


# --- bytes and text ----------------------------------------------------------------------------------


def _read_bytes(source: str | Path | bytes | IO[bytes], name: str) -> tuple[bytes, str]:
    limit = max_bytes()
    if isinstance(source, bytes):
        raw = source
    elif isinstance(source, str | Path):
        path = Path(source)
        name = name or path.name
        try:
            with path.open("rb") as handle:
                raw = handle.read(limit + 1)
        except OSError as exc:
            raise SetError(f"cannot read {path}: {exc.strerror or exc}") from exc
    else:
        name = name or Path(str(getattr(source, "name", "") or "")).name
        if hasattr(source, "seek"):
            source.seek(0)
        raw = source.read(limit + 1)
    if len(raw) > limit:
        raise SetError(f"the file is larger than {_size(limit)} (LABELED_SET_MAX_BYTES): split it into smaller files")
    if raw[:2] == GZIP_MAGIC:
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as unzipped:
                raw = unzipped.read(limit + 1)
        except (OSError, EOFError, zlib.error) as exc:
            raise SetError(f"the file starts as gzip does but cannot be decompressed ({exc})") from exc
        if len(raw) > limit:
            raise SetError(f"uncompressed, the file is larger than {_size(limit)} (LABELED_SET_MAX_BYTES): "
                           "split it into smaller files")
        name = name[:-3] if name.lower().endswith(".gz") else name
    return raw, name


def _size(count: int) -> str:
    return f"{count / 1024 / 1024:,.0f} MB" if count >= 1024 * 1024 else f"{count:,} bytes"


def _format_of(name: str, data: bytes) -> str:
    suffix = Path(name.lower()).suffix
    if suffix in EXTENSIONS:
        fmt = EXTENSIONS[suffix]
        if fmt == "json" and not _is_one_json_document(data):
            return "jsonl"  # a .json file that holds one object per line
        return fmt
    start = data.lstrip(codecs.BOM_UTF8 + b" \t\r\n")[:1]
    if start == b"[":
        return "json"
    if start == b"{":
        return "json" if _is_one_json_document(data) else "jsonl"
    return "csv"


def _is_one_json_document(data: bytes) -> bool:
    try:
        json.loads(data.decode("utf-8-sig"))
    except (ValueError, RecursionError):
        first = data.decode("utf-8-sig", errors="replace").lstrip().split("\n", 1)[0]
        try:
            return not isinstance(json.loads(first), dict)
        except (ValueError, RecursionError):
            return True  # neither: let the JSON reader say where it breaks
    return True


def _decode(data: bytes, fmt: str) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise SetError("the file is UTF-16 (Excel's “Unicode text”): save it as UTF-8 (“CSV UTF-8”) and import "
                       "it again")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _not_utf8(data, exc, fmt) from None


def _not_utf8(data: bytes, exc: UnicodeDecodeError, fmt: str) -> SetError:
    """Where the first byte that is not UTF-8 is: its offset and line, and for CSV/TSV its row and column
    (the text before it is valid, so it can be parsed)."""
    offset = exc.start
    line = data.count(b"\n", 0, offset) + 1
    message = (f"the file is not UTF-8: byte 0x{data[offset]:02X} at byte offset {offset:,} (line {line}) is not "
               "valid UTF-8. Save the file as UTF-8 (in Excel: “CSV UTF-8”) and import it again")
    if fmt not in ("csv", "tsv"):
        return SetError(message, row=line if fmt == "jsonl" else None)
    before = data[:offset].decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(before, newline=""), delimiter="\t" if fmt == "tsv" else _delimiter(before)))
    if not before or before.endswith(("\n", "\r")):
        rows.append([""])  # the bad byte starts a new row
    row, index = len(rows), len(rows[-1]) - 1
    try:
        header_at = _find_header(rows[:-1])
    except SetError:
        header_at = None
    column = f"column {index + 1}"
    if header_at is not None:
        names = _column_names(rows[header_at])
        column = names[index] if index < len(names) else column
    return SetError(message, row=row, column=column)


def _check_cell(value: Any, row: int, column: str) -> None:
    if isinstance(value, str):
        text = value
    elif isinstance(value, list | dict):
        text = json.dumps(value, ensure_ascii=False)
    else:
        return
    if len(text) > MAX_EXAMPLE_CHARS:
        raise SetError(f"the cell holds {len(text):,} characters, more than the {MAX_EXAMPLE_CHARS:,} an example "
                       "may have", row=row, column=column)
    if "\x00" in text:
        raise SetError("the cell holds a NUL character", row=row, column=column)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise SetError("the cell holds a lone surrogate (\\ud800-\\udfff), which is no character",
                       row=row, column=column) from None


def _too_many(row: int) -> SetError:
    return SetError(f"the file has more than {MAX_ROWS:,} data rows: split it into smaller files", row=row)


# --- CSV and TSV -------------------------------------------------------------------------------------


def _delimiter(text: str) -> str:
    """Comma, unless a semicolon or a tab splits the first rows into one steady width more often (a
    spreadsheet saved with a European list separator, or tab-separated text under another name)."""
    sample = text[:65536]
    scores = {}
    for delimiter in (",", ";", "\t"):
        try:
            widths = [len(row) for row, _ in zip(csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter),
                                                 range(30), strict=False) if any(cell.strip() for cell in row)]
        except csv.Error:
            continue
        wide = [w for w in widths if w > 1]
        steady = max((wide.count(w) for w in set(wide)), default=0)
        scores[delimiter] = steady / len(widths) if widths else 0.0
    best = max(scores, key=lambda d: scores[d], default=",")
    return "," if scores.get(",", 0.0) >= scores.get(best, 0.0) else best


def _read_delimited(text: str, delimiter: str, limit: int | None) -> Table:
    # A cell may be as long as the file (the cell limit is checked below, naming row and column);
    # the csv module's own limit (128 KiB) would stop it with a message naming neither.
    csv.field_size_limit(max(csv.field_size_limit(), max_bytes() + 1))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    head: list[list[str]] = []
    numbers: list[int] = []
    rows: list[dict[str, Any]] = []
    try:
        for cells in reader:
            head.append(cells)
            if len(head) >= 2 * HEADER_SEARCH_ROWS:
                break
        header_at = _find_header(head)
        if header_at is None:
            return _read_sections(head + list(reader), limit)
        columns = _column_names(head[header_at])
        pending = iter(head[header_at + 1 :])
        number = header_at + 1
        for cells in _chain(pending, reader):
            number += 1
            if not any(cell.strip() for cell in cells):
                continue
            if limit is not None and len(rows) >= limit:
                return _table(columns, rows, numbers, header_at, head, truncated=True)
            if len(rows) >= MAX_ROWS:
                raise _too_many(number)
            rows.append(_row(columns, cells, number))
            numbers.append(number)
    except csv.Error as exc:
        raise SetError(f"the CSV cannot be read: {exc}", row=reader.line_num) from exc
    return _table(columns, rows, numbers, header_at, head)


def _chain(first: Iterator[list[str]], then: Any) -> Iterator[list[str]]:
    yield from first
    yield from then


def _table(columns: list[str], rows: list[dict[str, Any]], numbers: list[int], header_at: int,
           head: list[list[str]], truncated: bool = False) -> Table:
    above = sum(1 for cells in head[:header_at] if any(cell.strip() for cell in cells))
    notes = [f"{above} row{'s' if above != 1 else ''} above the header (row {header_at + 1}) skipped"] if above else []
    return Table(columns=columns, rows=rows, row_numbers=numbers, header_row=header_at + 1, skipped_above=above,
                 truncated=truncated, notes=notes)


def _row(columns: list[str], cells: list[str], number: int) -> dict[str, Any]:
    extra = [i for i in range(len(columns), len(cells)) if cells[i].strip()]
    if extra:
        raise SetError(f"the row has {len(cells)} cells but the header names {len(columns)} columns",
                       row=number, column=f"column {extra[0] + 1}")
    row = {}
    for i, column in enumerate(columns):
        value = cells[i] if i < len(cells) else ""
        _check_cell(value, number, column)
        row[column] = value
    return row


def _find_header(rows: list[list[str]]) -> int | None:
    """The index of the first row that looks like a header: mostly non-empty, short, distinct cells that
    are not all numbers, with most rows below it as wide. A disclaimer or title row above it fails (one
    long cell; a single short title; a short sentence whose comma splits it in two, over narrower rows).
    A header-like row over rows that are *wider* than it is refused, not skipped: its cells are the
    column names, and the rows hold more cells than it names (usually a comma in a cell without quotes)."""
    seen = 0
    for index, cells in enumerate(rows):
        trimmed = _trim(cells)
        if not trimmed:
            continue
        seen += 1
        if seen > HEADER_SEARCH_ROWS:
            return None
        filled = [cell for cell in trimmed if cell]
        numbered = [(i + 1, r) for i, r in enumerate(rows[index + 1 : index + 41], start=index + 1) if _trim(r)][:5]
        below = [r for _, r in numbered]
        named = (len(filled) * 2 >= len(trimmed)
                 and all(len(cell) <= MAX_HEADER_CELL and "\n" not in cell for cell in filled)
                 and len({cell.lower() for cell in filled}) == len(filled)
                 and not all(_NUMBER.fullmatch(cell) for cell in filled))
        if not named:
            continue
        if len(trimmed) == 1:
            if all(len(_trim(r)) == 1 for r in below):
                return index  # a one-column file
            continue  # a title above the table
        # A row below fits when it is as wide as this one (a spreadsheet pads every row to one width) or
        # no wider than its filled cells (a hand-written file leaves trailing cells out).
        fits = [len(r) == len(cells) or len(_trim(r)) <= len(trimmed) for r in below]
        if 2 * sum(fits) >= len(fits):
            return index
        wider = [(n, r) for n, r in numbered if len(r) > len(cells) and len(_trim(r)) > len(trimmed)]
        if 2 * len(wider) > len(below):
            first, row = wider[0]
            raise SetError(f"row {index + 1} looks like the header ({', '.join(filled[:6])}) but the rows below "
                           f"have more cells than it names (row {first} has {len(row)}): a cell holding the "
                           "delimiter may be missing its quotes", row=first)
    return None


def _trim(cells: list[str]) -> list[str]:
    trimmed = [cell.strip() for cell in cells]
    while trimmed and not trimmed[-1]:
        trimmed.pop()
    return trimmed


def _column_names(cells: list[str]) -> list[str]:
    names: list[str] = []
    for i, cell in enumerate(_trim(cells)):
        name = " ".join(cell.split()) or f"column {i + 1}"
        base, n = name, 2
        while name.lower() in {known.lower() for known in names}:
            name, n = f"{base} ({n})", n + 1
        names.append(name)
    return names


def _read_sections(rows: list[list[str]], limit: int | None) -> Table:
    """A golden-set sheet: section rows ("SP0" alone) label the numbered example rows below them
    (number, text, ..., a model's answer); titles, notes and metric footers are skipped."""
    section, data, numbers = "", [], []
    saw_section = False
    for number, cells in enumerate(rows, start=1):
        trimmed = _trim(cells)
        if not trimmed:
            continue
        first, rest = trimmed[0], trimmed[1:]
        if _CODE.fullmatch(first) and not any(rest):
            section, saw_section = first.upper(), True
            continue
        if first.isdigit() and rest and rest[0]:
            if not section:
                raise SetError("an example row comes before any section row naming its label", row=number)
            if limit is not None and len(data) >= limit:
                break
            if len(data) >= MAX_ROWS:
                raise _too_many(number)
            model_label = next((cell.upper() for cell in reversed(rest[1:]) if _CODE.fullmatch(cell)), "")
            _check_cell(rest[0], number, "column 2")
            data.append({"text": rest[0], "label": section, "model answer": model_label})
            numbers.append(number)
    if not saw_section or not data:
        raise SetError(f"no header row found in the first {HEADER_SEARCH_ROWS} rows: the first row of the table "
                       "should name its columns (for example text,label)", row=1)
    return Table(columns=list(SECTION_COLUMNS), rows=data, row_numbers=numbers, layout="sections",
                 notes=["no header row: read as a golden-set sheet, each example labelled by the section row "
                        "(SP0, SP2, ...) above it"])


# --- JSON Lines and JSON -----------------------------------------------------------------------------


def _read_json_lines(text: str, limit: int | None) -> Table:
    columns: dict[str, None] = {}
    rows, numbers = [], []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        if limit is not None and len(rows) >= limit:
            return _json_table(columns, rows, numbers, "jsonl", truncated=True)
        if len(rows) >= MAX_ROWS:
            raise _too_many(number)
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SetError(f"the line is not JSON: {exc.msg} at character {exc.colno}", row=number) from None
        except RecursionError:
            raise SetError("the line nests too deeply", row=number) from None
        rows.append(_json_row(obj, number, columns))
        numbers.append(number)
    return _json_table(columns, rows, numbers, "jsonl")


def _read_json(text: str, limit: int | None) -> Table:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SetError(f"the file is not JSON: {exc.msg} at line {exc.lineno}, character {exc.colno}") from None
    except RecursionError:
        raise SetError("the JSON nests too deeply") from None
    if isinstance(data, dict):
        lists = [key for key, value in data.items() if isinstance(value, list)]
        if len(lists) != 1:
            raise SetError("the JSON is an object; it should be a list of objects, or an object holding one list "
                           f"of them (it holds {len(lists)} lists{': ' + ', '.join(lists[:5]) if lists else ''})")
        data = data[lists[0]]
    if not isinstance(data, list):
        raise SetError("the JSON should be a list of objects (one per example)")
    if len(data) > MAX_ROWS:
        raise _too_many(MAX_ROWS + 1)
    columns: dict[str, None] = {}
    rows, numbers = [], []
    for number, obj in enumerate(data, start=1):
        if limit is not None and len(rows) >= limit:
            return _json_table(columns, rows, numbers, "json", truncated=True)
        rows.append(_json_row(obj, number, columns))
        numbers.append(number)
    return _json_table(columns, rows, numbers, "json")


def _json_row(obj: Any, number: int, columns: dict[str, None]) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise SetError(f"expected an object ({{\"text\": ..., \"label\": ...}}), found {type(obj).__name__}",
                       row=number)
    for key, value in obj.items():
        _check_cell(value, number, str(key))
        columns.setdefault(str(key), None)
    return {str(key): value for key, value in obj.items()}


def _json_table(columns: dict[str, None], rows: list[dict[str, Any]], numbers: list[int], fmt: str,
                truncated: bool = False) -> Table:
    names = list(columns)
    full = [{name: row.get(name) for name in names} for row in rows]
    return Table(columns=names, rows=full, row_numbers=numbers, format=fmt, truncated=truncated)
