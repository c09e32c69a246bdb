"""The fake not-ready kernel RNG.

modes.py is the only place that knows the modes: their table, the --mode
option, the launch command, and running a program under a mode (one Run
comes back).  launcher.py is that launch, ``python -m pep522_harness fakerng
MODE -- COMMAND``: it installs the seccomp filter and, for the stateful
modes, runs supervisor.py, which answers getrandom() as a kernel would.
probes.py asks an interpreter the behaviour table's questions under a mode.

Fake uses core only.
"""
