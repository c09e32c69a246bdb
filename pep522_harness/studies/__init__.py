"""Studies: what stock and patched interpreters do, each study a module (the
impact study a package) with its own command.

behaviour (the behaviour table), impact (real programs and other projects'
tests, one table), regrtest (CPython's own suite), bench (pyperf and the
wake-up), boot (a real kernel, bootfiles/), debian (Debian's stack and ours),
demo.  A study uses patchset, fake and core, and never imports another
study: what two studies share lives in a lower layer.
"""
