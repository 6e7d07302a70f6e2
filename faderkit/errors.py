"""The one exception type users see: its message is a single line saying what was wrong and what to do."""


class FaderkitError(Exception):
    """A problem with the user's input or files; the CLI prints it as one line and exits non-zero."""


def brief(exc: BaseException, limit: int = 160) -> str:
    """The informative part of an exception's message, on one line: a header line ending in ':'
    (as torch's "Error(s) in loading state_dict for X:") gives way to the detail after it."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    while len(lines) > 1 and lines[0].endswith(":"):
        lines.pop(0)
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."
