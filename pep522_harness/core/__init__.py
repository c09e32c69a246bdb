"""The ground floor: what makes an interpreter, and what every floor above shares.

Making one: versions (the supported releases, versions.toml), paths (where
things live), aptsource and fetch (the pinned tarball), quilt (series files,
DEP-3 headers, diffs), apply (the series on a fresh tree), build (stock and
patched, the same way), initramfs (an installed interpreter, packed for a
boot).  Shared: options (--cpython, --variant), tables (cells, Markdown,
JSON), process (the environment and the runner of a program under study),
errors (the failures the command line explains).

Core imports nothing above it.
"""
