"""CelebA's lists (attributes, partition, aligned landmarks) as .txt (the original) or .csv (Kaggle).

Both forms are parsed with numpy over the whole byte buffer (202,599 lines in a fraction of a
second): a CSV is the txt form with commas, so its commas become spaces and the same tokenizer
reads it. A UTF-8 byte-order mark, Windows line endings, spaces around names and quoted cells are
accepted; only when something is wrong is the offending line looked at on its own, so every error
names the file and the line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from faderkit.errors import FaderkitError

_WS = np.zeros(256, dtype=bool)
_WS[[9, 10, 11, 12, 13, 32]] = True
#: The aligned-landmark columns, in the order of the original file (left = the image's left).
LANDMARK_COLUMNS = ("lefteye_x", "lefteye_y", "righteye_x", "righteye_y", "nose_x", "nose_y",
                    "leftmouth_x", "leftmouth_y", "rightmouth_x", "rightmouth_y")


def _read(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FaderkitError(f"cannot read {path}: {exc.strerror or exc}") from None
    return data[3:] if data.startswith(b"\xef\xbb\xbf") else data


def _tokens(data: bytes):
    """Whitespace-separated tokens of ``data``: (bytes as uint8, starts, ends, tokens per line)."""
    buf = np.frombuffer(data.rstrip(), dtype=np.uint8)
    if buf.size == 0:
        z = np.zeros(0, dtype=np.int64)
        return buf, z, z, z
    solid = (~_WS[buf]).view(np.uint8)
    change = np.empty(buf.size + 1, dtype=bool)
    change[0], change[-1] = solid[0], solid[-1]
    np.not_equal(solid[1:], solid[:-1], out=change[1:-1])
    edge = np.flatnonzero(change)
    starts, ends = edge[0::2], edge[1::2]  # each token is buf[start:end]
    is_start = np.zeros(buf.size, dtype=np.uint8)
    is_start[starts] = 1
    line_begin = np.concatenate([[0], np.flatnonzero(buf == 10) + 1])
    return buf, starts, ends, np.add.reduceat(is_start, line_begin, dtype=np.int64)


def _line_text(data: bytes, line: int) -> str:
    return data.rstrip().split(b"\n")[line].decode("utf-8", "replace").strip()


def _names(data: bytes, starts: np.ndarray, ends: np.ndarray) -> list[str]:
    if starts.size == 0:
        return []
    return b"\n".join([data[s:e] for s, e in zip(starts.tolist(), ends.tolist())]).decode(
        "utf-8", "surrogateescape").split("\n")


def _split_csv(path: Path, raw: bytes, example: str) -> tuple[list[str], bytes]:
    """(header cells, body with commas as spaces) of a CSV; the header must be line 1."""
    head, _, body = raw.partition(b"\n")
    cells = [c.strip().strip('"').strip() for c in head.decode("utf-8", "replace").split(",")]
    while cells and not cells[-1]:  # a trailing comma
        cells.pop()
    if len(cells) < 2:
        sep = next((s for s in (";", "\t") if s in head.decode("utf-8", "replace")), None)
        found = f"columns separated by {sep!r}" if sep else repr(head[:40].decode("utf-8", "replace").strip())
        raise FaderkitError(f"{path} line 1: expected a comma-separated header like {example!r}, found {found}")
    if cells[0].lower().endswith((".jpg", ".jpeg", ".png")):
        raise FaderkitError(f"{path} line 1: expected a header like {example!r}, found a data row ({cells[0]})")
    if "" in cells:
        raise FaderkitError(f"{path} line 1: column {cells.index('') + 1} of the header has no name")
    return cells, body.replace(b",", b" ").replace(b'"', b" ")


def _rows(path: Path, body: bytes, width: int, first_line: int, what: str, show_line: bool = False):
    """Tokens of ``body`` checked to be ``width`` per line: (buf, starts, ends) shaped (N, width)."""
    buf, starts, ends, per_line = _tokens(body)
    bad = np.flatnonzero(per_line != width)
    if bad.size:
        i = int(bad[0])
        found = (repr(_line_text(body, i)) if show_line else
                 str(per_line[i] - 1) if per_line[i] else "an empty line")
        raise FaderkitError(f"{path} line {i + first_line}: expected {what}, found {found}")
    n = per_line.size
    return buf, starts.reshape(n, width), ends.reshape(n, width)


def read_attributes(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """list_attr_celeba.txt or .csv -> (attribute names, file names, int8 (N, A): 1 for '1', 0 for '-1')."""
    raw = _read(path)
    count = None
    if path.suffix.lower() == ".csv":
        cells, body = _split_csv(path, raw, "image_id,5_o_Clock_Shadow,...")
        names, first_line = cells[1:], 2
    else:
        head = raw.split(b"\n", 2)
        if len(head) < 2:
            raise FaderkitError(f"{path} is too short: line 1 should be the image count, line 2 the attribute names")
        try:
            count = int(head[0])
        except ValueError:
            raise FaderkitError(f"{path} line 1: expected the image count, found "
                                f"{head[0][:40].decode(errors='replace').strip()!r}") from None
        names = head[1].decode("utf-8", "replace").split()
        if not names:
            raise FaderkitError(f"{path} line 2: expected the attribute names, found an empty line")
        body, first_line = head[2] if len(head) > 2 else b"", 3
    width = len(names) + 1
    buf, starts, ends = _rows(path, body, width, first_line, f"a file name and {len(names)} values")
    n = starts.shape[0]
    if count is not None and n != count:
        raise FaderkitError(f"{path}: line 1 says {count} images but {n} image lines follow")
    if n == 0:
        raise FaderkitError(f"{path} lists no images")
    files = _names(body, starts[:, 0], ends[:, 0])
    vs, length = starts[:, 1:], ends[:, 1:] - starts[:, 1:]
    first = buf[vs]
    second = buf[np.minimum(vs + 1, buf.size - 1)]
    one = (length == 1) & (first == ord("1"))
    minus_one = (length == 2) & (first == ord("-")) & (second == ord("1"))
    invalid = ~(one | minus_one)
    if invalid.any():
        r, c = map(int, np.argwhere(invalid)[0])
        token = body[vs[r, c]:ends[r, c + 1]].decode("utf-8", "replace")
        raise FaderkitError(f"{path} line {r + first_line}: {names[c]} is {token!r}; values must be 1 or -1")
    _no_duplicates(files, path, first_line)
    return names, files, one.astype(np.int8)


def read_partition(path: Path) -> tuple[list[str], np.ndarray]:
    """list_eval_partition.txt or .csv -> (file names, int8 partition 0/1/2 per line)."""
    raw = _read(path)
    first_line = 1
    if path.suffix.lower() == ".csv":
        cells, raw = _split_csv(path, raw, "image_id,partition")
        if len(cells) != 2:
            raise FaderkitError(f"{path} line 1: expected the two columns image_id,partition, found {len(cells)}")
        first_line = 2
    buf, starts, ends = _rows(path, raw, 2, first_line, "'<file name> <0, 1 or 2>'", show_line=True)
    n = starts.shape[0]
    value = buf[starts[:, 1]] if n else np.zeros(0, dtype=np.uint8)
    invalid = ((ends[:, 1] - starts[:, 1]) != 1) | (value < ord("0")) | (value > ord("2"))
    if invalid.any():
        i = int(np.flatnonzero(invalid)[0])
        raise FaderkitError(f"{path} line {i + first_line}: partition must be 0 (train), 1 (valid) or 2 (test), "
                            f"found {_line_text(raw, i)!r}")
    files = _names(raw, starts[:, 0], ends[:, 0])
    _no_duplicates(files, path, first_line)
    return files, (value - ord("0")).astype(np.int8)


def read_landmarks(path: Path) -> tuple[list[str], np.ndarray]:
    """list_landmarks_align_celeba.txt or .csv -> (file names, float64 (N, 10) in :data:`LANDMARK_COLUMNS` order)."""
    raw = _read(path)
    if path.suffix.lower() == ".csv":
        cells, body = _split_csv(path, raw, "image_id," + ",".join(LANDMARK_COLUMNS[:2]) + ",...")
        header, header_line, first_line, count = cells[1:], 1, 2, None
    else:
        head = raw.split(b"\n", 2)
        try:
            count = int(head[0])
        except ValueError:
            raise FaderkitError(f"{path} line 1: expected the image count, found "
                                f"{head[0][:40].decode(errors='replace').strip()!r}") from None
        header = head[1].decode("utf-8", "replace").split() if len(head) > 1 else []
        body, header_line, first_line = head[2] if len(head) > 2 else b"", 2, 3
    lower = [h.lower() for h in header]
    if sorted(lower) != sorted(LANDMARK_COLUMNS):
        raise FaderkitError(f"{path} line {header_line}: expected the columns {' '.join(LANDMARK_COLUMNS)}, "
                            f"found {' '.join(header) or 'nothing'}")
    order = [lower.index(c) for c in LANDMARK_COLUMNS]
    _, starts, ends = _rows(path, body, 11, first_line, "a file name and 10 coordinates")
    n = starts.shape[0]
    if count is not None and n != count:
        raise FaderkitError(f"{path}: line 1 says {count} images but {n} image lines follow")
    if n == 0:
        raise FaderkitError(f"{path} lists no images")
    cells = [body[s:e] for s, e in zip(starts[:, 1:].ravel().tolist(), ends[:, 1:].ravel().tolist())]
    try:
        values = np.array(cells).astype(np.float64).reshape(n, 10)
    except ValueError:
        k = next(k for k, c in enumerate(cells) if not _is_number(c))
        raise FaderkitError(f"{path} line {k // 10 + first_line}: {header[k % 10]} is "
                            f"{cells[k].decode('utf-8', 'replace')!r}; coordinates must be numbers") from None
    if not np.isfinite(values).all():
        k = int(np.flatnonzero(~np.isfinite(values.ravel()))[0])
        raise FaderkitError(f"{path} line {k // 10 + first_line}: {header[k % 10]} is not a finite number")
    return _names(body, starts[:, 0], ends[:, 0]), values[:, order]


def _is_number(cell: bytes) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _no_duplicates(files: list[str], path: Path, first_line: int) -> None:
    if len(set(files)) == len(files):
        return
    seen: dict[str, int] = {}
    for i, f in enumerate(files):
        if f in seen:
            raise FaderkitError(f"{path} line {i + first_line}: {f} is listed twice (also line {seen[f] + first_line})")
        seen[f] = i


def partition_of(files: list[str], path: Path, attr_path: Path) -> np.ndarray:
    """The partition of each file of the attribute list (the two lists may differ in order)."""
    pfiles, parts = read_partition(path)
    if pfiles == files:
        return parts
    where = dict(zip(pfiles, parts.tolist()))
    out = np.empty(len(files), dtype=np.int8)
    first = 2 if attr_path.suffix.lower() == ".csv" else 3
    for i, f in enumerate(files):
        p = where.get(f)
        if p is None:
            raise FaderkitError(f"{f} (line {i + first} of {attr_path.name}) is missing from {path}")
        out[i] = p
    return out
