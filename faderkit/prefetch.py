"""Reading the next batch while this one trains: a background thread, pinned memory for CUDA copies.

Only the reading moves (``BatchStream.batch``: indices, images, labels); the random flips and the copy
to the device stay in the training thread, so the batches, and every random draw, are exactly those
of a run without it. Batch ``b + 1`` is read while batch ``b`` trains; asking for any other batch
reads it then (a resumed run, a schedule that skips).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import torch

from .data import BatchStream


class Prefetcher:
    def __init__(self, stream: BatchStream, pin: bool = False, enabled: bool = True):
        self.stream, self.pin = stream, pin
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="faderkit-prefetch") if enabled else None
        self._next: tuple[int, Future] | None = None
        self.hits = self.misses = 0

    def _read(self, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = self.stream.batch(b)
        if self.pin:  # page-locked: the copy to the GPU runs without blocking this thread
            images, labels = images.pin_memory(), labels.pin_memory()
        return images, labels

    def batch(self, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(uint8 images, int64 labels) of batch ``b``, the same as ``stream.batch(b)``."""
        pending, self._next = self._next, None
        if pending is not None and pending[0] == b:
            out = pending[1].result()  # an error reading it is raised here, for the batch that needs it
            self.hits += 1
        else:
            if pending is not None:  # the stream is never read by two threads at once
                pending[1].exception()
            out = self._read(b)
            self.misses += 1
        if self._pool is not None:
            self._next = (b + 1, self._pool.submit(self._read, b + 1))
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool, self._next = None, None
