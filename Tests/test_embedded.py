"""The Buildroot and Yocto forms of the export, against the rules those
projects document and check, and applied the way each project applies
patches: every form gives exactly the tree apply gives.

Buildroot's rules are its manual's (docs/manual/patch-policy.adoc: "Providing
patches", "Format and licensing of the package patches", "Additional patch
documentation") and check-package's (utils/checkpackagelib/lib_patch.py,
which ``utils/check-package`` runs on every ``*.patch``); its patch step is
support/scripts/apply-patches.sh.  OpenEmbedded's are the patch-status QA
check (meta/lib/oe/qa.py check_upstream_status, an error by default), the
recipe style guide's "Patch Upstream Status", patchtest (meta/lib/patchtest:
patchtest_patterns.py, tests/test_patch.py), insane.bbclass's check of
FILESEXTRAPATHS, and do_patch with its patch-fuzz QA check
(meta/lib/oe/patch.py QuiltTree and runcmd, insane.bbclass do_qa_patch).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pep522_harness.core import apply, fetch, quilt, versions
from pep522_harness.patchset import embedded, export

SUPPORTED = tuple(versions.releases())

# --- Buildroot: utils/checkpackagelib/lib_patch.py, quoted -----------------
APPLY_ORDER = re.compile(r"\d{1,4}-[^/]*$")                      # ApplyOrder (base name)
NUMBERED_PATCH = re.compile(r"Subject:\s*\[PATCH\s*\d+/\d+\]")   # NumberedSubject
SOB_ENTRY = re.compile(r"^Signed-off-by: .*$")                   # Sob
# lib_patch.Upstream (newer Buildroot: .checkpackageignore lists it) was not at
# hand; assumed to look for its trailer as Sob looks for its own.
UPSTREAM_ENTRY = re.compile(r"^Upstream: .*$")

# --- OpenEmbedded: meta/lib/oe/qa.py check_upstream_status, quoted ---------
KINDA_STATUS = re.compile(r"^.*upstream.*status.*$", re.IGNORECASE | re.MULTILINE)
STRICT_STATUS = re.compile(r"^Upstream-Status: (Pending|Submitted|Denied|Inappropriate"
                           r"|Backport|Inactive-Upstream)( .+)?$", re.MULTILINE)
# patchtest_patterns.py, its pyparsing made a regex: signed_off_by and the
# upstream_status line, and the submitters it refuses
PATCHTEST_SOB = re.compile(r"^Signed-off-by:\s*\S+.*(?= <)\s*<[A-Za-z0-9._%+-]+@"
                           r"[A-Za-z0-9.-]+\.[A-Za-z]{2,}>", re.MULTILINE)
PATCHTEST_STATUS = re.compile(r"^Upstream-Status\s*:\s*(Pending|Backport|Denied|Inappropriate"
                              r"|Submitted|Inactive-Upstream)")
INVALID_SUBMITTERS = (re.compile(r"^Upgrade Helper.+"), re.compile(r"auh@yoctoproject\.org"),
                      re.compile(r"uh@not\.set"), re.compile(r"\S+@example\.com"))
CVE = re.compile(r"CVE-\d{4}-\d+")
CVE_TAG = re.compile(r"^CVE:(\s+CVE-\d{4}-\d+)+", re.MULTILINE)
# insane.bbclass: "FILESEXTRAPATHS:prepend := \"${THISDIR}/Your_Files_Path:\""
FILESEXTRAPATHS = re.compile(r'^FILESEXTRAPATHS:prepend := "\$\{THISDIR\}/([^":]+):"$',
                             re.MULTILINE)


def message(text: str) -> str:
    """A mail's commit message: what comes before its first ``---`` line."""
    return text.split("\n---\n", 1)[0]


def buildroot_problems(path: Path) -> list[str]:
    """What check-package and the manual say of one patch file."""
    text = path.read_text(**quilt.ENCODING)
    lines = text.splitlines()
    problems = []
    if not APPLY_ORDER.match(path.name):
        problems.append("ApplyOrder: use name <number>-<description>.patch")
    if any(line.startswith("diff --git") for line in lines) \
            and any(NUMBERED_PATCH.search(line) for line in lines):
        problems.append("NumberedSubject: generate your patches with 'git format-patch -N'")
    if not any(SOB_ENTRY.search(line) for line in lines):
        problems.append("Sob: missing Signed-off-by in the header")
    if not any(UPSTREAM_ENTRY.search(line) for line in lines):
        problems.append("Upstream: missing Upstream in the header")
    if not text.endswith("\n"):
        problems.append("NewlineAtEof: missing newline at end of file")
    if os.access(path, os.X_OK):
        problems.append("NotExecutable: this file does not need to be executable")
    # the manual: "A message explaining what the patch does, and why it is
    # needed, should be added in the header commentary of the patch"
    header = lines[:quilt.diff_start(lines)]
    if not any(line.strip() and not re.match(r"^(From |[\w-]+: )", line) for line in header):
        problems.append("manual: no message explaining what the patch does and why")
    return problems


def yocto_problems(path: Path) -> list[str]:
    """What the patch-status QA check and patchtest say of one patch file."""
    text = path.read_text(encoding="utf-8", errors="ignore")
    problems = []
    if not STRICT_STATUS.search(text):
        problems.append("patch-status: " + ("Malformed" if KINDA_STATUS.search(text)
                                            else "Missing") + " Upstream-Status in patch")
    head = message(text)
    statuses = [line for line in head.splitlines() if line.startswith("Upstream-Status")]
    if not statuses or not all(PATCHTEST_STATUS.match(line) for line in statuses):
        problems.append("patchtest: Upstream-Status is missing or in incorrect format")
    if not PATCHTEST_SOB.search(head):
        problems.append("patchtest: a patch file has been added without a Signed-off-by tag")
    for line in head.splitlines():
        if line.startswith(("From: ", "Signed-off-by: ")) \
                and any(bad.search(line) for bad in INVALID_SUBMITTERS):
            problems.append(f"patchtest: invalid submitter: {line}")
    if CVE.search(head) and not CVE_TAG.search(head):
        problems.append("patchtest: missing or incorrectly formatted CVE tag")
    return problems


def _export(version: str, fmt: str, out: Path, signoff: str | None = None) -> Path:
    files = export.render(version, fmt, signoff=signoff, log=lambda _m: None)
    export.write(files, out, owned=True)
    return out


def _trees(factory, tarballs: dict[str, Path], variant: str) -> dict[str, Path]:
    """A tree of each supported release, as apply makes it: pristine (stock)
    or with the series (pep522)."""
    trees = {}
    for v in SUPPORTED:
        trees[v] = factory.mktemp(f"{variant}-{v}") / "src"
        apply.make_tree(fetch.Fetched(versions.release(v), "test", path=tarballs[v]),
                        variant, trees[v], log=lambda _m: None)
    return trees


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, pristine_tarball) -> dict[str, Path]:
    return _trees(tmp_path_factory, pristine_tarball, "stock")


@pytest.fixture(scope="module")
def applied(tmp_path_factory, pristine_tarball) -> dict[str, Path]:
    return _trees(tmp_path_factory, pristine_tarball, "pep522")


# --- Buildroot -------------------------------------------------------------


@pytest.mark.parametrize("version", SUPPORTED)
def test_buildroot_form_follows_buildroots_rules(version, tmp_path):
    out = _export(version, "buildroot", tmp_path / "python3")
    names = sorted(p.name for p in out.iterdir())
    series = [e.name for e in apply.series(version)] + [export.ADDED_NAME]
    # numbered from 1 in apply order, four digits as git format-patch pads them;
    # no series file; no package version in a file name
    assert names == [f"{n:04d}-{name}" for n, name in enumerate(series, 1)]
    assert not any(version in name for name in names)
    for path in sorted(out.iterdir()):
        assert buildroot_problems(path) == [], path.name
        head = message(path.read_text(**quilt.ENCODING))
        assert re.search(r"^Subject: \[PATCH\] \S", head, re.M), path.name
        upstream = [line for line in head.splitlines() if line.startswith("Upstream:")]
        # a patch denied upstream: what was proposed, and that it was denied
        assert upstream == [f"Upstream: {embedded.PEP} (denied: PEP 522 was rejected "
                            "upstream in favour of PEP 524)"]
        assert head.splitlines()[-1] == "Signed-off-by: PEP 522 team <team@pep522.invalid>"


def _buildroot_patch_step(tree: Path, folder: Path) -> dict[str, str]:
    """support/scripts/apply-patches.sh for a folder without a series file:
    its *.patch in C-locale order, each by its own patch command."""
    output = {}
    for path in sorted(folder.glob("*.patch"), key=lambda p: p.name.encode()):
        with path.open("rb") as f:
            proc = subprocess.run(["patch", "-g0", "-p1", "--no-backup-if-mismatch",
                                   "-d", str(tree), "-t", "-N"], stdin=f,
                                  capture_output=True, text=True)
        assert proc.returncode == 0, f"Patch failed!  Please fix {path.name}!\n{proc.stdout}"
        output[path.name] = proc.stdout
    assert not [str(p) for p in tree.rglob("*.rej")], "Aborting.  Reject files found."
    return output


@pytest.mark.parametrize("version", SUPPORTED)
def test_buildroot_form_gives_the_apply_tree(version, pristine, applied, tmp_path):
    out = _export(version, "buildroot", tmp_path / "python3")
    tree = shutil.copytree(pristine[version], tmp_path / "build" / f"python3-{version}",
                           symlinks=True)
    # Buildroot lets fuzz pass; we never need it
    for name, said in _buildroot_patch_step(tree, out).items():
        assert apply.fuzzed(said) == {}, name
    assert export.tree_differences(applied[version], tree) == []


# --- Yocto ----------------------------------------------------------------


def _bbappend(layer: Path) -> tuple[str, list[Path]]:
    """The bbappend's text, and the patch files its SRC_URI names, in order."""
    bbappend = layer / embedded.BBAPPEND
    text = bbappend.read_text()
    extra = FILESEXTRAPATHS.findall(text)
    assert len(extra) == 1, "FILESEXTRAPATHS must be set once, as insane.bbclass says"
    append = re.search(r'^SRC_URI:append:class-target = "( \\\n(?:    file://\S+ \\\n)+)"$',
                       text, re.M)
    assert append, "SRC_URI:append:class-target with a leading space, one file a line"
    names = re.findall(r"file://(\S+)", append.group(1))
    return text, [bbappend.parent / extra[0] / name for name in names]


@pytest.mark.parametrize("version", SUPPORTED)
def test_yocto_form_follows_openembeddeds_rules(version, tmp_path):
    layer = _export(version, "yocto", tmp_path / "meta-pep522")
    text, patches = _bbappend(layer)
    series = [e.name for e in apply.series(version)] + [export.ADDED_NAME]
    assert [p.name for p in patches] == [f"{n:04d}-{name}" for n, name in enumerate(series, 1)]
    files = sorted(p for p in layer.rglob("*") if p.is_file())
    assert files == sorted([layer / embedded.BBAPPEND, *patches])
    assert (layer / embedded.BBAPPEND).name == "python3_%.bbappend"
    assert "SRC_URI +=" not in text and "SRC_URI:append =" not in text   # target only
    for path in patches:
        assert yocto_problems(path) == [], path.name
        head = message(path.read_text(**quilt.ENCODING))
        assert "Upstream-Status: Denied [PEP 522 was rejected upstream]" in head.splitlines()
        assert head.splitlines()[-1] == "Signed-off-by: PEP 522 team <team@pep522.invalid>"


def _oe_do_patch(tree: Path, patches: list[Path]) -> None:
    """do_patch with PATCHTOOL = "quilt" (OE's default): QuiltTree links each
    patch into ${S}/patches, adds "NAME -p1" to the series and runs
    ``quilt push``; runcmd marks output that says " fuzz " and "Hunk ", and
    the patch-fuzz QA check (an error by default) fails on that mark."""
    (tree / "patches").mkdir()
    fuzz = []
    for path in patches:
        (tree / "patches" / path.name).symlink_to(path)
        with (tree / "patches" / "series").open("a") as f:
            f.write(f"{path.name} -p1\n")
        proc = subprocess.run(["quilt", "--quiltrc", os.devnull, "push"], cwd=tree,
                              capture_output=True, text=True)
        assert proc.returncode == 0, f"Applying patch '{path.name}' failed:\n{proc.stdout}"
        if " fuzz " in proc.stdout and "Hunk " in proc.stdout:
            fuzz.append(path.name)
    assert fuzz == [], "QA Issue: Fuzz detected [patch-fuzz]"
    shutil.rmtree(tree / "patches")
    shutil.rmtree(tree / ".pc")


@pytest.mark.skipif(shutil.which("quilt") is None, reason="quilt is not installed")
@pytest.mark.parametrize("version", SUPPORTED)
def test_yocto_form_gives_the_apply_tree(version, pristine, applied, git_am, tmp_path):
    layer = _export(version, "yocto", tmp_path / "meta-pep522")
    _text, patches = _bbappend(layer)
    tree = shutil.copytree(pristine[version], tmp_path / "S", symlinks=True)
    _oe_do_patch(tree, patches)
    assert export.tree_differences(applied[version], tree) == []
    # PATCHTOOL = "git": git am, in SRC_URI's order
    am = git_am(pristine[version], patches, tmp_path / "am")
    assert export.tree_differences(applied[version], am) == []


# --- both ------------------------------------------------------------------


def test_the_rules_fail_the_forms_they_are_not_for(tmp_path):
    """The quilt series breaks the rules of both; the mails of the mbox,
    numbered [PATCH n/m], break NumberedSubject."""
    version = versions.DEFAULT_VERSION
    qdir = _export(version, "quilt", tmp_path / "quilt")
    first = qdir / apply.series(version)[0].name
    assert [p.split(":")[0] for p in buildroot_problems(first)] == \
        ["ApplyOrder", "Sob", "Upstream"]
    assert [p.split(":")[0] for p in yocto_problems(first)] == ["patch-status", "patchtest",
                                                                 "patchtest"]
    mbox = export.render(version, "mbox", log=lambda _m: None)
    mail = next(iter(mbox.values())).decode().split("\n" + export.ZERO_FROM)[0]
    (tmp_path / "0001-first.patch").write_text(mail)
    assert [p.split(":")[0] for p in buildroot_problems(tmp_path / "0001-first.patch")] == \
        ["NumberedSubject", "Sob", "Upstream"]


@pytest.mark.parametrize("fmt", embedded.FORMATS)
def test_signoff_of_the_carrier_follows_the_authors(fmt, tmp_path):
    me = "Jane Builder <jane@builder.example.org>"
    out = _export(versions.DEFAULT_VERSION, fmt, tmp_path / fmt, signoff=me)
    for path in sorted(out.rglob("*.patch")):
        sobs = [line for line in message(path.read_text(**quilt.ENCODING)).splitlines()
                if line.startswith("Signed-off-by:")]
        assert sobs == ["Signed-off-by: PEP 522 team <team@pep522.invalid>",
                        f"Signed-off-by: {me}"], path.name
