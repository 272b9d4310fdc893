from __future__ import annotations

from types import SimpleNamespace

from policies_app.diff import CONTEXT, changed_settings, side_by_side


def test_it_pairs_changed_lines_and_marks_the_changed_characters():
    result = side_by_side("a\nSP1 bans <links>\nc\n", "a\nSP1 bans <all links>\nc\n")
    assert (result.changed, result.added, result.removed) == (1, 0, 0)
    changed = [row for row in result.rows if row.kind == "chg"]
    assert len(changed) == 1
    row = changed[0]
    assert (row.left_number, row.right_number) == (2, 2)
    assert row.left_html == "SP1 bans &lt;links&gt;"
    assert row.right_html == "SP1 bans &lt;<ins>all </ins>links&gt;"
    assert (row.left_class, row.right_class) == ("chg", "chg")


def test_it_numbers_added_and_removed_lines_on_their_own_side():
    result = side_by_side("one\ntwo\nthree", "one\nthree\nfour")
    rows = [(r.kind, r.left_number, r.right_number) for r in result.rows]
    assert rows == [("equal", 1, 1), ("del", 2, None), ("equal", 3, 2), ("add", None, 3)]
    assert (result.added, result.removed, result.identical) == (1, 1, False)


def test_it_folds_long_unchanged_stretches_but_keeps_context_around_changes():
    old = "\n".join(f"line {n}" for n in range(1, 41))
    new = old.replace("line 20", "line twenty")
    rows = side_by_side(old, new).rows
    kinds = [row.kind for row in rows]
    assert kinds == ["fold"] + ["equal"] * CONTEXT + ["chg"] + ["equal"] * CONTEXT + ["fold"]
    assert rows[0].folded == 19 - CONTEXT and rows[-1].folded == 20 - CONTEXT
    assert len(side_by_side(old, new, fold=False).rows) == 40


def test_identical_texts_have_nothing_to_show():
    result = side_by_side("same\ntext", "same\ntext")
    assert result.identical
    assert [row.kind for row in result.rows] == ["fold"]


def test_it_lists_only_the_settings_that_changed():
    def version(**fields):
        base = {"label_scheme": "binary", "labels": ["0", "1"], "output_format": "json", "reasoning_effort": "low"}
        return SimpleNamespace(**{**base, **fields})

    changes = changed_settings(version(), version(reasoning_effort="high", labels=["SP0", "SP2"]))
    assert [(c.label, c.old, c.new) for c in changes] == [
        ("Labels", "0, 1", "SP0, SP2"),
        ("Reasoning effort", "low", "high"),
    ]
