"""Where the trainer's batches come from: inputs held in memory, or an image store streamed from disk.

Both sources give the same thing: `gather(order, bounds)` yields the stored rows order[start:stop] of each batch, on
the device, in order (the trainer augments them); `ordered(batch_size)` yields every row in order as the model
sees it at evaluation. A streamed source reads each batch from the store in a background thread (file order within
a batch, into pinned host memory on CUDA, copied without blocking), PREFETCH batches ahead of the training step.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import queue
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from deep.augment import centre_view
from deep.data.store import StoredImages

PREFETCH = 3  # batches read ahead of the step
READERS = 4  # threads reading one batch: positioned reads release the GIL, and a disk serves several at once

Inputs = torch.Tensor | StoredImages
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers
HEAP_BLOCKS = 32 * 2**20  # blocks up to 32 MiB (glibc's largest threshold) come from the heap...
HEAP_KEPT = 256 * 2**20  # ...which keeps up to 256 MiB free at its top rather than giving it back


@functools.cache
def reuse_heap() -> None:
    """Let glibc reuse a step's batch-sized temporaries instead of mapping fresh pages for them every step.

    By default glibc maps large blocks and unmaps them when freed (a 256-image RandomResizedCrop then faulted in 7,000
    fresh pages, 60 % of its time on a KVM guest), and raises its thresholds as it sees large blocks freed, after which
    it gives the heap's top back and maps it again step after step. Fixed thresholds keep the blocks in the heap for
    reuse. The heap then stays near one step's working set as long as no small allocation outlives its step between
    them (the trainer sums its losses in place for that reason): a CPU epoch over a store settled 13 MiB above its
    first step (tests/test_imagenet.py).
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt(M_MMAP_THRESHOLD, HEAP_BLOCKS)
        libc.mallopt(M_TRIM_THRESHOLD, HEAP_KEPT)
    except (OSError, AttributeError, TypeError):  # not glibc (musl, macOS): nothing to tune
        pass


class Resident:
    """Batches of a tensor already in memory (moved to the training device by the caller); `crop` as StoredImages'."""

    def __init__(self, x: torch.Tensor, crop: int | None = None) -> None:
        self.x, self.crop = x, crop

    def __len__(self) -> int:
        return len(self.x)

    def gather(self, order: torch.Tensor, bounds: Sequence[tuple[int, int]]) -> Iterator[torch.Tensor]:
        """The rows order[start:stop] of each batch."""
        for start, stop in bounds:
            yield self.x[order[start:stop]]

    def ordered(self, batch_size: int) -> Iterator[torch.Tensor]:
        """Every row, batch_size at a time, in order, in its evaluation view."""
        for start in range(0, len(self.x), batch_size):
            batch = self.x[start : start + batch_size]
            yield batch if self.crop is None else centre_view(batch, self.crop)


class Streamed:
    """Batches read from an image store (deep.data.store.StoredImages) by a background thread."""

    def __init__(self, images: StoredImages, device: torch.device, prefetch: int = PREFETCH,
                 readers: int = READERS) -> None:
        self.images, self.device, self.prefetch, self.readers = images, device, prefetch, readers
        self.crop = images.crop
        reuse_heap()

    def __len__(self) -> int:
        return len(self.images)

    def gather(self, order: torch.Tensor, bounds: Sequence[tuple[int, int]]) -> Iterator[torch.Tensor]:
        """The stored rows order[start:stop] of each batch, on the device."""
        positions = order.cpu().numpy()
        return self._stream([positions[start:stop] for start, stop in bounds])

    def ordered(self, batch_size: int) -> Iterator[torch.Tensor]:
        """Every row in order, batch_size at a time, in its evaluation view (the centre crop with a crop size)."""
        rows = np.arange(len(self.images))
        for batch in self._stream([rows[start : start + batch_size] for start in range(0, len(rows), batch_size)]):
            yield batch if self.crop is None else centre_view(batch, self.crop)

    def _read(self, positions: np.ndarray, out: torch.Tensor, pool: ThreadPoolExecutor) -> None:
        """Read `positions` into `out`, split into contiguous parts over the reader threads."""
        parts = np.array_split(np.arange(len(positions)), min(self.readers, len(positions)))
        list(pool.map(lambda part: self.images.read(positions[part], out[part[0] : part[-1] + 1]),
                      [p for p in parts if len(p)]))

    def _stream(self, batches: list[np.ndarray]) -> Iterator[torch.Tensor]:
        """The images at each entry of `batches`, read ahead by a background thread."""
        if not batches:
            return
        cuda = self.device.type == "cuda"
        largest = max(len(b) for b in batches)
        # A buffer is refilled only once the consumer has moved past it: PREFETCH in the queue, one being filled,
        # one in the consumer's hands.
        buffers = [torch.empty((largest, *self.images.stored_shape), dtype=torch.uint8, pin_memory=cuda)
                   for _ in range(self.prefetch + 2)]
        ready: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()
        copies = torch.cuda.Stream(self.device) if cuda else None

        def put(item: object) -> bool:
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            try:
                with ThreadPoolExecutor(self.readers) as pool:
                    for k, positions in enumerate(batches):
                        host = buffers[k % len(buffers)][: len(positions)]
                        self._read(positions, host, pool)
                        if copies is not None:
                            with torch.cuda.stream(copies):
                                batch = host.to(self.device, non_blocking=True)
                            copies.synchronize()  # the pinned buffer may be refilled once the copy is done
                        else:
                            batch = host
                        if not put(batch):
                            return
                put(None)
            except BaseException as error:  # noqa: BLE001 - handed to the consumer, which raises it
                put(error)

        thread = threading.Thread(target=produce, name="stream-batches", daemon=True)
        thread.start()
        try:
            while True:
                item = ready.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                if copies is not None:
                    item.record_stream(torch.cuda.current_stream(self.device))
                yield item
        finally:
            stop.set()
            thread.join()


def batches(x: Inputs, device: torch.device, move: bool = False) -> Resident | Streamed:
    """The batch source of inputs `x`: streamed for an image store; otherwise resident, moved to `device` at once when
    `move` (training) or a batch at a time by the caller (prediction)."""
    if isinstance(x, StoredImages):
        return Streamed(x, device)
    return Resident(x.to(device) if move else x)
