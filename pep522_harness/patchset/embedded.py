"""The series in the forms builders of embedded images take: Buildroot and
Yocto (OpenEmbedded).

Both take patches as ``git format-patch -N`` writes them (``Subject: [PATCH]``,
never numbered), one file per patch named ``NNNN-<name>`` in the order they
apply, each with the trailers its project asks for at the end of the commit
message:

buildroot  ``Upstream:`` (the manual's "Additional patch documentation": a
           patch denied upstream points at what was proposed and says so)
           and ``Signed-off-by:``.  The files go into
           ``$BR2_GLOBAL_PATCH_DIR/python3/``, where Buildroot applies
           ``*.patch`` in C-locale order.
yocto      ``Upstream-Status: Denied [...]`` (OpenEmbedded's patch-status QA
           check and its recipe style guide) and ``Signed-off-by:``, plus
           ``recipes-devtools/python/python3_%.bbappend``, which appends them
           to SRC_URI, in order, for the target python3 only: python3-native
           and nativesdk-python3 run on build hosts, whose RNG is ready, and
           keep OE-Core's shared state.

``Signed-off-by:`` is the patch's DEP-3 Author, who certifies where the change
comes from (Developer's Certificate of Origin, a); whoever carries the series
into their tree adds their own (``--signoff``), as both projects ask of a
person who passes a patch on.  It is never read from the machine's git
configuration: an export stays byte-for-byte reproducible.
"""

from __future__ import annotations

FORMATS = ("buildroot", "yocto")
PEP = "https://peps.python.org/pep-0522/"
UPSTREAM = {
    "buildroot": f"Upstream: {PEP} (denied: PEP 522 was rejected upstream "
                 "in favour of PEP 524)",
    "yocto": "Upstream-Status: Denied [PEP 522 was rejected upstream]",
}
RECIPES = "recipes-devtools/python"
BBAPPEND = f"{RECIPES}/python3_%.bbappend"
FILES = f"{RECIPES}/python3-pep522"


def file_name(number: int, name: str) -> str:
    """``0001-os-urandom-raise-when-rng-not-ready.patch``: the apply order first."""
    stem = name.removesuffix(".patch").removesuffix(".diff")
    return f"{number:04d}-{stem}.patch"


def trailers(fmt: str, author: str, signoff: str | None = None) -> tuple[str, ...]:
    """The lines that end the commit message of a patch in this form."""
    signers = [author] + ([signoff] if signoff and signoff != author else [])
    return (UPSTREAM[fmt], *(f"Signed-off-by: {who}" for who in signers))


def bbappend(version: str, names: list[str]) -> str:
    uris = "".join(f"    file://{name} \\\n" for name in names)
    return (
        f"# PEP 522 for CPython {version}: os.urandom() raises BlockingIOError while\n"
        f"# the kernel RNG is not ready ({PEP}).\n"
        f"# Made by: nox -s export -- --cpython {version} --format yocto\n"
        f"# They are made for python3 {version}: check PV of OE-Core's python3 recipe.\n"
        "# Only the target python3 is patched: python3-native and nativesdk-python3\n"
        "# run on build hosts, whose RNG is ready, and keep OE-Core's shared state.\n"
        f'FILESEXTRAPATHS:prepend := "${{THISDIR}}/{FILES.rsplit("/", 1)[1]}:"\n'
        'SRC_URI:append:class-target = " \\\n'
        f'{uris}"\n')


def layout(fmt: str, version: str, patches: dict[str, bytes]) -> dict[str, bytes]:
    """The export's files (path -> bytes) from the named patches, in order."""
    if fmt == "buildroot":
        return dict(patches)
    files = {f"{FILES}/{name}": data for name, data in patches.items()}
    files[BBAPPEND] = bbappend(version, list(patches)).encode()
    return files
