"""The contract every fuzz target is held to, and the fuzz budget.

Per input: success, or one FaderkitError line (for the console: a 4xx with a one-line JSON message);
any other exception, a hang past :data:`HANG_SECONDS`, or a file outside the input's own folder
touched is a violation. The budget is a few examples per target in the normal suite (the same ones
every run); ``FADERKIT_FUZZ_EXAMPLES=N`` runs N fresh random examples per target (a long campaign).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import warnings
from pathlib import Path

from hypothesis import HealthCheck, settings

from faderkit.errors import FaderkitError

#: Examples per target of a long campaign (0: the short budget of the normal suite).
CAMPAIGN = int(os.environ.get("FADERKIT_FUZZ_EXAMPLES", "0") or 0)
#: An input that keeps a target busier than this is a hang (the stated bound; the slowest seen is far below).
HANG_SECONDS = 30


def budget(short: int):
    """Hypothesis settings: ``short`` fixed examples in the suite, CAMPAIGN random ones in a campaign."""
    return settings(max_examples=CAMPAIGN or short, deadline=None, derandomize=not CAMPAIGN, database=None,
                    suppress_health_check=list(HealthCheck), print_blob=True)


class Hang(Exception):
    """The target ran past HANG_SECONDS on one input."""


@contextlib.contextmanager
def hang_bound(seconds: int = HANG_SECONDS):
    def alarm(signum, frame):
        raise Hang(f"no answer after {seconds} s")
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def one_line(message: str) -> None:
    assert message.strip(), "an empty error message"
    assert "\n" not in message and "Traceback" not in message, f"not one line: {message!r}"


def outcome(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` under the contract: its result, or the FaderkitError it raised (one line)."""
    with hang_bound(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return fn(*args, **kwargs)
        except FaderkitError as exc:
            one_line(str(exc))
            return exc
        finally:  # a warning would be a second line on the user's terminal
            noise = [f"{w.category.__name__}: {w.message}" for w in caught if issubclass(w.category, UserWarning)]
            assert not noise, f"warnings reached the user: {noise[:3]}"


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` -> its sha256, to show that a call left the earlier results intact."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(root).rglob("*")) if p.is_file()}


def unchanged(before: dict, after: dict, allowed=lambda name: False) -> None:
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k) and not allowed(k))
    assert not changed, f"files touched: {changed[:5]}"


# ---------------------------------------------------------------- mutations shared by the targets

from hypothesis import strategies as st  # noqa: E402

#: Values people (and attackers) put where a number or a name belongs.
ODD_VALUES = ["", "0", "-1", "1e400", "-1e400", "nan", "inf", "1e-400", "99999999999999999999", "0x10", "1_000",
              "yes", "no", "null", "~", "[]", "{}", "[1, [2, [3]]]", "'", '"', "\\", "\x00", "\ufeff", "é",
              "../../etc/passwd", "/dev/zero", "~/x", "a" * 300, "!!python/object/apply:os.system ['true']",
              "*undefined", "&a [*a]", "%TAG ! x", "{a: 1, a: 2}", "2020-01-01", "1.5", "true", ".inf"]


@st.composite
def mutated_bytes(draw, base: bytes, max_ops: int = 6):
    """``base`` after a few random edits: bit flips, truncation, insertions, deletions, overwrites
    (positions biased to the first 64 bytes, where the headers are)."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, max_ops))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "overwrite"]))
        size = max(len(data), 1)
        at = draw(st.one_of(st.integers(0, min(64, size) - 1), st.integers(0, size - 1)))
        if op == "flip" and data:
            data[at % len(data)] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 16))]
        elif op == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=8) | st.sampled_from([b"\xff" * 4, b"\x00" * 4, b"\x7f\xff\xff\xff"]))
            data[at:at + len(chunk)] = chunk
    return bytes(data)


@st.composite
def mutated_lines(draw, text: str, max_ops: int = 4):
    """``text`` after a few line-level edits: a line deleted, duplicated, moved, re-indented, or a
    value swapped for one of :data:`ODD_VALUES` or random text."""
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, max_ops))):
        if not lines:
            lines = [""]
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "move", "indent", "value", "value", "insert"]))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "move":
            lines.insert(draw(st.integers(0, len(lines) - 1)), lines.pop(i))
        elif op == "indent":
            lines[i] = " " * draw(st.integers(0, 5)) + lines[i].lstrip()
        elif op == "value":
            head, sep, _ = lines[i].partition(":")
            new = draw(st.sampled_from(ODD_VALUES) | st.text(max_size=12))
            lines[i] = f"{head}{sep or ':'} {new}"
        else:
            lines.insert(i, draw(st.text(max_size=30)))
    ending = draw(st.sampled_from(["\n", "\r\n", ""]))
    return ending.join(lines) + ending
