"""The audit: every RNG caller in the standard library is in audit.toml.

The pristine tarballs of every supported release are scanned; a caller that
the table does not know, or a row that no longer matches, fails.  The scanner
itself is checked on small synthetic trees.
"""

from __future__ import annotations


import pytest

from pep522_harness.core import paths, versions
from pep522_harness.patchset import audit

REPO = paths.REPO
SUPPORTED = list(versions.releases())


@pytest.fixture(scope="module")
def found(pristine_tarball) -> dict[str, list[audit.Caller]]:
    return {v: audit.scan(pristine_tarball[v]) for v in SUPPORTED}


@pytest.fixture(scope="module")
def rows() -> list[audit.Row]:
    return audit.load_table()


def test_every_caller_of_every_release_is_decided(found, rows):
    report = audit.check(found, rows)
    assert report.ok, audit.format_problems(report)


@pytest.mark.parametrize("key", [
    ("Lib/multiprocessing/process.py", "_MainProcess.__init__", "os.urandom"),
    ("Lib/multiprocessing/connection.py", "deliver_challenge", "os.urandom"),
    ("Lib/uuid.py", "uuid4", "os.urandom"),
    ("Lib/random.py", "SystemRandom.getrandbits", "os.urandom"),
    ("Lib/secrets.py", "<module>", "SystemRandom"),
    ("Lib/urllib/request.py", "AbstractDigestAuthHandler.get_cnonce", "os.urandom"),
    ("Modules/posixmodule.c", "os_urandom_impl", "_PyOS_URandom"),
    ("Modules/_randommodule.c", "random_seed_urandom", "_PyOS_URandomNonblock"),
    ("Python/bootstrap_hash.c", "_Py_HashRandomization_Init", "pyurandom"),
])
def test_known_callers_are_found_in_both_releases(found, key):
    for version in SUPPORTED:
        assert key in {c.key for c in found[version]}, (version, key)


def test_release_specific_callers(found):
    keys = {v: {c.key for c in found[v]} for v in SUPPORTED}
    crypt = ("Lib/crypt.py", "<module>", "SystemRandom")
    assert crypt in keys["3.11.2"] and crypt not in keys["3.13.5"]


def test_every_row_is_decided(rows):
    for row in rows:
        for name in audit.FIELDS:
            assert getattr(row, name).strip(), (row.key, name)
    # The decisions, as data.
    by_key = {r.key: r for r in rows}
    authkey = by_key[("Lib/multiprocessing/process.py", "_MainProcess.__init__",
                      "os.urandom")]
    assert "import" in authkey.where and "as stock" in authkey.patched
    assert "os.fork()" in authkey.patched
    assert "raises" in by_key[("Lib/uuid.py", "uuid4", "os.urandom")].patched


def test_a_new_caller_fails_the_check(tmp_path, rows, found):
    tree = tmp_path / "tree"
    (tree / "Lib" / "pkg").mkdir(parents=True)
    (tree / "Lib" / "pkg" / "mod.py").write_text(
        "import os\n\nclass Key:\n    def make(self):\n        return os.urandom(8)\n")
    report = audit.check({"3.13.5": found["3.13.5"] + audit.scan(tree)}, rows)
    assert not report.ok
    assert [(c.path, c.scope, c.api) for c in report.new["3.13.5"]] == [
        ("Lib/pkg/mod.py", "Key.make", "os.urandom")]
    assert "Lib/pkg/mod.py:5" in audit.format_problems(report)


def test_a_stale_row_fails_the_check(rows, found):
    extra = audit.Row("Lib/gone.py", "f", "os.urandom", "p", "s", "p", "d")
    report = audit.check(found, [*rows, extra])
    assert not report.ok
    assert "Lib/gone.py" in audit.format_problems(report)


def test_comments_strings_and_tests_are_not_callers(tmp_path):
    tree = tmp_path / "tree"
    (tree / "Lib" / "test").mkdir(parents=True)
    (tree / "Lib" / "clean.py").write_text(
        '"""Calls os.urandom() in its docs only; uuid4() too."""\n'
        "# os.urandom(16) in a comment\n"
        "x = 'secrets.token_bytes'\n")
    (tree / "Lib" / "test" / "test_x.py").write_text("import os\nos.urandom(1)\n")
    (tree / "Modules" / "clinic").mkdir(parents=True)
    (tree / "Modules" / "clinic" / "gen.c.h").write_text("_PyOS_URandom(b, n);\n")
    (tree / "Modules" / "doc.c").write_text(
        "/* _PyOS_URandom(buffer) */\n#error \"use getrandom() \\\n  or not\"\n")
    assert audit.scan(tree) == []


def test_aliases_and_c_scopes(tmp_path):
    tree = tmp_path / "tree"
    (tree / "Lib").mkdir(parents=True)
    (tree / "Lib" / "alias.py").write_text(
        "from os import urandom as _u\n_bytes = os.urandom\n\n"
        "def nonce():\n    return _u(8) + _bytes(8)\n")
    (tree / "Python").mkdir()
    (tree / "Python" / "seed.c").write_text(
        "static int\nseed_it(char *b)\n{\n    if (x) {\n        y();\n    }\n"
        "    return _PyOS_URandomNonblock(b, 8);\n}\n"
        "#if A\nstatic int\nother(void) {\n#else\nstatic int\nother(void) {\n#endif\n"
        "    return 0;\n}\n"
        "int\nlater(void)\n{\n    return getrandom(b, 1, 0);\n}\n")
    got = {(c.path, c.scope, c.api, c.lines) for c in audit.scan(tree)}
    assert got == {
        ("Lib/alias.py", "<module>", "os.urandom", (1, 2)),
        ("Lib/alias.py", "nonce", "os.urandom", (5,)),
        ("Python/seed.c", "seed_it", "_PyOS_URandomNonblock", (7,)),
        ("Python/seed.c", "later", "getrandom", (21,)),
    }


def test_readme_holds_the_audit_table(found, rows):
    readme = (REPO / "README.md").read_text()
    assert "## The standard library under a not-ready RNG" in readme
    table = audit.markdown(rows, found)
    assert table in readme, "README's audit table is out of date: regenerate it with " \
        "python -m pep522_harness audit --markdown"


def test_command_line_passes_on_pristine_releases(pristine_tarball, capsys):
    assert audit.main([]) == 0
    assert "every one is decided" in capsys.readouterr().out


def test_readme_names_the_table_the_audit_reads():
    readme = (REPO / "README.md").read_text()
    assert f"`{audit.TABLE.relative_to(REPO).as_posix()}`" in readme
