"""The patch set in the forms packagers and image builders take, and the
audit of its subject.

export.py writes the series as quilt, ``git am`` mail, one diff, or the
Buildroot and Yocto forms (embedded.py knows those projects' rules);
audit.py holds every caller of the system RNG in the standard library
against its decision (audit.toml).  Patchset uses core only.
"""
