"""quilt: series files, DEP-3 headers and -p1 diffs, read and written."""

from __future__ import annotations

import pytest

from pep522_harness.core import quilt


def test_dep3_parsing_round_trip():
    dep3 = quilt.parse_dep3(
        "Subject: One line\n first why\n .\n second why\n"
        "From: A B <a@b.org>\nOrigin: vendor\nForwarded: no\nLast-Update: 2025-01-02\n")
    assert dep3.summary == "One line"
    assert dep3.why == ["first why", "", "second why"]
    assert dep3.get("Author") == "A B <a@b.org>"
    assert quilt.check_dep3("x", dep3) == []
    assert quilt.parse_dep3(dep3.render()) == dep3


def test_hunk_lines_that_look_like_headers_are_hunk_lines():
    diff = ("--- a/x.sql\n+++ b/x.sql\n@@ -1,2 +1,2 @@\n"
            "--- an SQL comment\n+-- a new comment\n context\n")
    files = quilt.parse_diff(diff, "t")
    assert len(files) == 1 and files[0].counts() == (1, 1)


def test_dep3_header_in_git_mail_form():
    dep3 = quilt.parse_dep3(
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
        "From: A B <a@b.org>\nDate: Tue, 1 Jul 2025 00:00:00 +0000\n"
        "Subject: [PATCH 2/5] A summary that was long enough\n to be folded\n\n"
        "The why, first paragraph.\n\nSecond paragraph.\n\n"
        "Origin: vendor\nForwarded: not-needed\nLast-Update: 2025-07-01\n")
    assert dep3.summary == "A summary that was long enough to be folded"
    assert dep3.why == ["The why, first paragraph.", "", "Second paragraph."]
    assert dep3.get("Author") == "A B <a@b.org>"
    assert quilt.check_dep3("x", dep3) == []


def test_diff_n_epoch_labels_mean_created_and_deleted_files():
    diff = ("--- a/new.txt\t1970-01-01 00:00:00.000000000 +0000\n"
            "+++ b/new.txt\t2025-07-01 10:00:00.000000000 +0200\n"
            "@@ -0,0 +1 @@\n+hello\n"
            "--- a/old.txt\t2025-07-01 10:00:00.000000000 +0200\n"
            "+++ b/old.txt\t1970-01-01 00:00:00.000000000 +0000\n"
            "@@ -1 +0,0 @@\n-bye\n")
    new, old = quilt.parse_diff(diff, "t")
    assert (new.old, new.new) == (None, "new.txt")
    assert (old.old, old.new) == ("old.txt", None)
    assert new.render().startswith("diff --git a/new.txt b/new.txt\nnew file mode 100644\n"
                                   "--- /dev/null\n+++ b/new.txt\n")


def test_series_reads_active_lines_in_order(tmp_path):
    (tmp_path / "series").write_text("# comment\none.patch\n#off.patch\n\ntwo.diff -p1\n")
    assert quilt.series(tmp_path) == [quilt.SeriesEntry("one.patch", tmp_path / "one.patch"),
                                      quilt.SeriesEntry("two.diff", tmp_path / "two.diff")]
    (tmp_path / "series").write_text("one.patch -p0\n")
    with pytest.raises(quilt.QuiltError, match="only -p1"):
        quilt.series(tmp_path)


def test_hunk_headers_name_each_files_hunks(tmp_path):
    patch = tmp_path / "p.patch"
    patch.write_text("Description: x\n\n--- a/f.py\n+++ b/f.py\n@@ -1,2 +1,2 @@\n-a\n+b\n c\n"
                     "@@ -10 +10 @@\n-d\n+e\n")
    assert quilt.hunk_headers(patch) == {"f.py": ["@@ -1,2 +1,2 @@", "@@ -10 +10 @@"]}
    patch.write_text("--- a/f.py\n+++ b/f.py\n@@ -1,2 +1,2 @@\n-a\n")   # truncated
    assert quilt.hunk_headers(patch) == {}
