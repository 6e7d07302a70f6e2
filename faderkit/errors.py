"""The one exception type users see: its message is a single line saying what was wrong and what to do."""


class FaderkitError(Exception):
    """A problem with the user's input or files; the CLI prints it as one line and exits non-zero.

    A line break in the message (a quoted key, path or value holding one) is written as ``\\n``, so
    the message stays one line for Python callers too."""

    def __init__(self, message: object = "", *args):
        super().__init__(str(message).replace("\r", "\\r").replace("\n", "\\n"), *args)


def brief(exc: BaseException, limit: int = 160) -> str:
    """The informative part of an exception's message, on one line: a header line ending in ':'
    (as torch's "Error(s) in loading state_dict for X:") gives way to the detail after it."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    while len(lines) > 1 and lines[0].endswith(":"):
        lines.pop(0)
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."
