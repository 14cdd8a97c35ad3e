"""Error types whose message is shown to the user as one line (exit code 2 on the CLI)."""


class UserError(ValueError):
    """Bad input from the user (a name, a knob, a spec): reported as one line, never a traceback."""
