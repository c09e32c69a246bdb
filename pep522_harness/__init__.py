"""Harness for the PEP 522 patch set: fetch, apply, build, fake RNG, boot."""
