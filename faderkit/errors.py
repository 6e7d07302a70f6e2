"""The one exception type users see: its message is a single line saying what was wrong and what to do."""


class FaderkitError(Exception):
    """A problem with the user's input or files; the CLI prints it as one line and exits non-zero."""
