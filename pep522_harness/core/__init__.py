"""The ground floor: what makes an interpreter, and what every floor above uses.

versions.toml and versions.py (the supported releases), paths (where things
live), aptsource and fetch (the pinned tarball), apply (the series on a fresh
tree), build (stock and patched, the same way), initramfs (an installed
interpreter packed for a boot).  Core imports nothing above it.
"""
