"""Studies: what stock and patched interpreters do, each study a module (or,
for impact, a package) with its own command.

behaviour, impact (real programs and other projects' tests), regrtest, bench,
boot, debian, demo.  A study may use patchset, fake and core; a study never
imports another study.
"""
