"""Reading labelled files: formats, gzip, the header under a disclaimer, golden-set sheets, and every
refusal naming where the file is wrong."""

from __future__ import annotations

import gzip
import io
import json

import pytest

from evaluations import files
from evaluations.files import read_table
from evaluations.sets import MAX_EXAMPLE_CHARS, SetError
from safeguard import firstpass
from tests.evaluations.shared_data import SPAM_SET, need, raw_rows, teen_csvs


def test_every_teen_safety_csv_is_read_with_its_header_found_under_the_disclaimer_row():
    for path in teen_csvs():
        table = read_table(path)
        records = raw_rows(path)
        assert table.header_row == 2, path.name
        assert table.columns == [" ".join(c.split()) for c in records[1]], path.name
        assert table.skipped_above == 1 and "above the header" in table.notes[0]
        assert len(table.rows) == len(records) - 2
        assert table.row_numbers[0] == 3 and table.row_numbers[-1] == len(records)
        # Quoted cells with newlines stay in their row.
        assert [row[table.columns[2]] for row in table.rows] == [r[2] for r in records[2:]]


def test_the_spam_golden_sheet_is_read_as_sections_exactly_as_the_first_pass_reads_it():
    table = read_table(need(SPAM_SET))
    expected = firstpass.read_labeled_csv(SPAM_SET)
    assert table.layout == "sections"
    assert table.columns == ["text", "label", "model answer"]
    assert [(r["text"], r["label"], r["model answer"]) for r in table.rows] == [
        (e.text, e.label, e.model_label) for e in expected]
    assert table.row_numbers[0] == 3  # title row, then the SP0 section row
    assert {r["label"] for r in table.rows} == {"SP0", "SP2", "SP3", "SP4"}


def test_gzip_is_recognised_by_its_bytes_whatever_the_file_is_called():
    data = gzip.compress(b"text,label\nhello,0\nbuy now,1\n")
    for name in ("set.csv.gz", "set.csv", "upload"):
        table = read_table(data, name=name)
        assert table.columns == ["text", "label"] and len(table.rows) == 2, name


def test_tsv_json_lines_json_lists_and_objects_holding_a_list_are_read():
    assert read_table(b"text\tlabel\nhi\t0\n", name="a.tsv").rows == [{"text": "hi", "label": "0"}]
    lines = b'{"text": "hi", "label": 0}\n\n{"text": "buy", "label": 1, "extra": true}\n'
    table = read_table(lines, name="a.jsonl")
    assert table.columns == ["text", "label", "extra"] and table.row_numbers == [1, 3]
    assert table.rows[0] == {"text": "hi", "label": 0, "extra": None}
    assert read_table(b'[{"text": "hi", "label": "0"}]', name="a.json").rows == [{"text": "hi", "label": "0"}]
    held = read_table(b'{"meta": {"v": 1}, "examples": [{"text": "a", "label": "1"}]}', name="x.json")
    assert held.rows == [{"text": "a", "label": "1"}]
    assert read_table(lines, name="lines.json").format == "jsonl"  # a .json file holding one object per line
    assert read_table(lines).format == "jsonl"  # no name: the content says


def test_a_semicolon_separated_csv_and_a_byte_order_mark_are_read():
    table = read_table("\ufefftext;label\nbonjour, ça va;0\n".encode(), name="fr.csv")
    assert table.columns == ["text", "label"] and table.rows[0]["text"] == "bonjour, ça va"


def test_bytes_that_are_not_utf8_are_refused_naming_row_column_and_offset():
    data = b"text,label\nfine,0\n" + "caf\xe9 cr\xe8me,1\n".encode("cp1252")
    with pytest.raises(SetError) as refused:
        read_table(data, name="latin.csv")
    message = str(refused.value)
    assert refused.value.row == 3 and refused.value.column == "text"
    assert "byte 0xE9 at byte offset 21" in message and "(line 3)" in message
    assert "save the file as utf-8" in message.lower()
    data = b"text,label\nfine,\x92\n"
    with pytest.raises(SetError) as refused:
        read_table(data, name="quote.csv")
    assert (refused.value.row, refused.value.column) == (2, "label")


def test_utf16_and_excel_workbooks_are_refused_with_what_to_do():
    with pytest.raises(SetError, match="UTF-16.*save it as UTF-8"):
        read_table("text,label\nhi,0\n".encode("utf-16"), name="u.csv")
    with pytest.raises(SetError, match="zip file.*CSV UTF-8"):
        read_table(b"PK\x03\x04rest of a workbook", name="book.xlsx")


def test_an_empty_file_and_a_header_without_rows_are_refused():
    for data in (b"", b"  \n\n", b"\xef\xbb\xbf", gzip.compress(b"")):
        with pytest.raises(SetError, match="the file is empty"):
            read_table(data, name="e.csv")
    with pytest.raises(SetError, match=r"no data rows under its header \(row 1\)"):
        read_table(b"text,label\n\n", name="h.csv")


def test_a_cell_longer_than_an_example_may_be_is_refused_naming_row_and_column():
    data = f"text,label\nshort,0\n{'x' * (MAX_EXAMPLE_CHARS + 1)},1\n".encode()
    with pytest.raises(SetError) as refused:
        read_table(data, name="big.csv")
    assert (refused.value.row, refused.value.column) == (3, "text")
    assert f"more than the {MAX_EXAMPLE_CHARS:,}" in str(refused.value)
    with pytest.raises(SetError) as refused:
        read_table(json.dumps({"text": "x" * (MAX_EXAMPLE_CHARS + 1), "label": 1}).encode(), name="big.jsonl")
    assert (refused.value.row, refused.value.column) == (1, "text")


def test_files_past_the_size_limit_are_refused_even_when_small_compressed(settings):
    settings.LABELED_SET_MAX_BYTES = 1000
    with pytest.raises(SetError, match="larger than 1,000 bytes"):
        read_table(b"text,label\n" + b"a,0\n" * 400, name="a.csv")
    bomb = gzip.compress(b"text,label\n" + b"a,0\n" * 10_000)
    assert len(bomb) < 1000
    with pytest.raises(SetError, match="uncompressed, the file is larger"):
        read_table(bomb, name="a.csv.gz")


def test_more_rows_than_the_limit_are_refused(monkeypatch):
    monkeypatch.setattr(files, "MAX_ROWS", 3)
    with pytest.raises(SetError, match="more than 3 data rows") as refused:
        read_table(b"text,label\n" + b"a,0\n" * 4, name="a.csv")
    assert refused.value.row == 5
    assert len(read_table(b"text,label\n" + b"a,0\n" * 3, name="a.csv").rows) == 3


def test_a_row_wider_than_its_header_is_refused_naming_the_cell():
    with pytest.raises(SetError) as refused:
        read_table(b"text,label\nhi,0\nbuy,1,oops\n", name="a.csv")
    assert (refused.value.row, refused.value.column) == (3, "column 3")


def test_a_header_over_wider_rows_is_refused_not_skipped():
    rows = b"".join(b"message %d, with a comma,%d\n" % (i, i % 2) for i in range(10))
    with pytest.raises(SetError) as refused:
        read_table(b"text,label\n" + rows, name="unquoted.csv")
    assert refused.value.row == 2 and "row 1 looks like the header (text, label)" in str(refused.value)
    assert "missing its quotes" in str(refused.value)


def test_bad_json_is_refused_naming_the_line():
    with pytest.raises(SetError) as refused:
        read_table(b'{"text": "a", "label": 0}\n{"text": oops}\n', name="a.jsonl")
    assert refused.value.row == 2 and "not JSON" in str(refused.value)
    with pytest.raises(SetError, match="holds 2 lists"):
        read_table(b'{"a": [], "b": []}', name="a.json")
    with pytest.raises(SetError, match="row 2.*expected an object"):
        read_table(b'[{"text": "a"}, 3]', name="a.json")


def test_a_preview_reads_only_the_rows_it_asks_for():
    table = read_table(b"text,label\n" + b"a,0\n" * 50, name="a.csv", limit=10)
    assert len(table.rows) == 10 and table.truncated


def test_an_upload_is_read_from_its_file_object():
    upload = io.BytesIO(b"text,label\nhi,0\n")
    upload.name = "from-browser.csv"
    table = read_table(upload)
    assert table.name == "from-browser.csv" and table.rows == [{"text": "hi", "label": "0"}]
