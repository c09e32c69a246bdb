"""The harness of the PEP 522 patch set, in four layers, each a folder; a
layer uses only the layers below it.

    studies/   what we find out about interpreters, one study a module (impact:
               a package): behaviour, impact (real programs and other projects'
               test suites), regrtest, bench, boot, debian, demo.  A study uses
               patchset, fake and core, and never imports another study.
    patchset/  the series in the forms packagers take (export), carried to a new
               upstream release (refresh), and the audit of every caller of the
               system RNG in the standard library.  Uses core.
    fake/      the fake not-ready kernel RNG: modes.py, the only place that knows
               the modes, builds the launch and runs a program under a mode; the
               launcher and its supervisor; the behaviour table's questions.
               Uses core.
    core/      the ground floor: the supported releases (versions.toml), where
               things live, fetch, quilt, apply, build, and what every floor
               shares: options, tables, processes, errors.

``cli.py`` is the front door: ``python -m pep522_harness COMMAND`` from one table
of commands, each the ``main`` of one module.  Tests/test_layers.py holds the
plan against the imports.
"""
