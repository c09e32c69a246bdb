"""The patch set in the forms packagers take, and the audit of its subject.

export.py writes the series as quilt, ``git am`` mail or one diff; audit.py
holds every caller of the system RNG in the standard library against its
decision (audit.toml).  Patchset uses core only.
"""
