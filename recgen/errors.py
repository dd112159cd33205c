"""One exception type for user mistakes: the CLI prints its message on one line and exits with code 2."""


class RecgenError(Exception):
    """A problem with what the user handed us (a file, a flag, a dataset), not a bug in recgen."""

    exit_code = 2
