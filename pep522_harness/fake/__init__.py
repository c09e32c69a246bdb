"""The fake not-ready kernel RNG.

launcher.py runs a command under a seccomp filter (``python -m pep522_harness
fakerng MODE -- COMMAND``); supervisor.py answers the stateful modes' getrandom()
calls.  Fake uses core only.
"""
