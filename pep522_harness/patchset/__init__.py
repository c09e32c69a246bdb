"""The patch set in the forms packagers and image builders take, and the
audit of its subject.

export.py writes the series as quilt, ``git am`` mail, one diff, or the
Buildroot and Yocto forms (embedded.py knows those projects' rules);
pyenv.py puts the verified tarball where pyenv's python-build takes it, to
build with the one diff offline; refresh.py carries the series to a new
upstream release, merging the hunks whose context drifted (merge.py, the
three-way merge); audit.py holds every caller of the system RNG in the
standard library against its decision (audit.toml).  Patchset uses core
only.
"""
