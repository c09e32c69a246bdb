"""The failures the harness explains itself.

Each layer raises its own kind (FetchError, BuildError, ExportError, ...),
all of them a HarnessError: the command line prints the message and exits
with status 1, without a traceback.
"""


class HarnessError(RuntimeError):
    """A failure whose message says what went wrong and what to do."""
