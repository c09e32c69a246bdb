"""The harness of the PEP 522 patch set, in four layers; each uses only those below it.

    studies/   what we find out about interpreters: the behaviour table, real
               programs and other projects' tests (impact/), CPython's own
               regression suite, benchmarks, a real boot, Debian's stack, the demo.
               A study may use patchset, fake and core; it never imports another study.
    patchset/  the series in the forms packagers take (export), and the audit of
               every caller of the system RNG.  Uses core.
    fake/      the fake not-ready kernel RNG: its modes (modes.py, the only place
               that knows them), the launcher and its supervisor.  Uses core.
    core/      the ground floor: the supported releases (versions.toml), where
               things live, fetching, the quilt series, applying, building.

``cli.py`` is the front door, ``python -m pep522_harness COMMAND``: one table of
commands, each the ``main`` of one module.
"""
