"""The impact study: real programs (programs.py) and other projects' test
suites (projects.py), stock against patched under a fake RNG, in one table
(table.py: docs/impact.json and its Markdown twin, docs/impact.md).
"""
