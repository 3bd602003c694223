"""Reading each image once for the checks: content hash, perceptual hash, size and tags.

Near duplicates are images whose difference hash (dHash) is within ``MAX_HASH_DISTANCE``
bits. The hash is the 256 signs of horizontal gradients of the 32 x 32 model input shrunk
to 17 x 16: chest radiographs all look alike at the usual 9 x 8 (64 bits), so a 64-bit hash
pairs different patients; at 16 x 16, different synthetic chest phantoms (the demo's, made
to look alike) stayed 22 bits or more apart while a copy re-encoded at JPEG quality 40,
halved in size, contrast-stretched by 15 % or brightened by 20 levels stayed within 12.

A hash match is only a candidate: two different phantoms of another demo seed came 16 bits
apart. A pair is confirmed when the 16 x 16 thumbnails also correlate at
``MIN_CORRELATION`` or more: copies (re-encoded, resized, brightened, contrast-stretched)
measured 0.9998 and above, different demo images 0.993 at most.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from cxr_desktop.core.errors import ImageLoadError
from cxr_desktop.core.io import load_image, model_input

MAX_HASH_DISTANCE = 16
MIN_CORRELATION = 0.997
THUMB_SIDE = 16
HASH_BITS = 256
_PAIR_BLOCK = 4_000_000  # uint64 words compared per numpy step (32 MB)


@dataclass(slots=True)
class ImageRecord:
    """What the checks need from one image; ``error`` is ``missing`` or ``unreadable``."""

    index: int
    error: str | None = None
    reason: str = ""
    digest: str = ""
    dhash: bytes = b""
    thumb: bytes = b""  # THUMB_SIDE x THUMB_SIDE uint8, to confirm near duplicates
    rows: int = 0
    columns: int = 0
    bits_stored: int = 0
    source_format: str = ""
    modality: str | None = None
    body_part: str | None = None


def thumbnail(small: np.ndarray) -> bytes:
    """The 16 x 16 box-filtered thumbnail of a 32 x 32 uint8 image."""
    return np.asarray(Image.fromarray(small).resize((THUMB_SIDE, THUMB_SIDE),
                                                    Image.Resampling.BOX)).tobytes()


def thumbnails_correlate(a: bytes, b: bytes, minimum: float = MIN_CORRELATION) -> bool:
    """True when two thumbnails are the same picture up to exposure and encoding."""
    x = np.frombuffer(a, dtype=np.uint8).astype(np.float64)
    y = np.frombuffer(b, dtype=np.uint8).astype(np.float64)
    if x.std() == 0 or y.std() == 0:
        return bool(np.array_equal(x, y))
    return bool(np.corrcoef(x, y)[0, 1] >= minimum)


def perceptual_hash(small: np.ndarray) -> bytes:
    """The 256-bit dHash of a 32 x 32 uint8 image (see the module docstring)."""
    grid = np.asarray(Image.fromarray(small).resize((17, 16), Image.Resampling.BOX),
                      dtype=np.float32)
    return np.packbits((grid[:, 1:] > grid[:, :-1]).ravel()).tobytes()


def scan_image(path: Path, index: int) -> ImageRecord:
    """Hash, decode and measure one file; failures become the record's ``error``."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return ImageRecord(index, "missing", "file not found")
    except OSError as exc:
        return ImageRecord(index, "unreadable", f"cannot read file ({exc.strerror or exc})")
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    del data
    try:
        radiograph = load_image(path)
        small = model_input(radiograph, 32)
    except ImageLoadError as exc:
        return ImageRecord(index, "unreadable", exc.reason, digest)
    return ImageRecord(index, None, "", digest, perceptual_hash(small), thumbnail(small),
                       radiograph.rows,
                       radiograph.columns, radiograph.bits_stored, radiograph.source_format,
                       radiograph.modality, radiograph.body_part)


class Throttle:
    """Calls ``progress(done, total)`` at most every ``interval`` seconds, and at the end."""

    def __init__(self, progress: Callable[[int, int], None] | None, total: int,
                 interval: float = 0.05) -> None:
        self.progress, self.total, self.interval = progress, total, interval
        self._last = 0.0

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if self.progress is not None and (done >= self.total or now - self._last >= self.interval):
            self._last = now
            self.progress(done, self.total)


def scan_images(paths: list[tuple[int, Path]], *, progress: Callable[[int, int], None] | None,
                should_stop: Callable[[], bool] | None,
                workers: int | None) -> tuple[list[ImageRecord], bool]:
    """Scan ``(index, path)`` pairs in threads; ``(records, stopped early)``.

    At most ``2 * workers`` images are in flight, so a stop request is honoured within a
    few images; the images already being read are finished and kept.
    """
    workers = workers or min(16, 2 * (os.cpu_count() or 1))
    report = Throttle(progress, len(paths))
    stop = should_stop or (lambda: False)
    records: list[ImageRecord] = []
    todo: Iterator[tuple[int, Path]] = iter(paths)
    if workers <= 1:
        for index, path in todo:
            if stop():
                return records, True
            records.append(scan_image(path, index))
            report(len(records))
        return records, False
    stopped = False
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cxr-check") as pool:
        pending: set[Future[ImageRecord]] = set()

        def refill() -> None:
            for index, path in todo:
                pending.add(pool.submit(scan_image, path, index))
                if len(pending) >= 2 * workers:
                    return

        refill()
        while pending:
            done, rest = wait(pending, return_when=FIRST_COMPLETED)
            pending.clear()
            pending.update(rest)
            records.extend(future.result() for future in done)
            report(len(records))
            if not stopped and stop():
                stopped = True
            if not stopped:
                refill()
    return records, stopped


def near_duplicate_pairs(hashes: list[bytes],
                         max_distance: int = MAX_HASH_DISTANCE) -> list[tuple[int, int]]:
    """Pairs ``(i, j)``, ``i < j``, of hashes at most ``max_distance`` bits apart."""
    n = len(hashes)
    if n < 2:
        return []
    words = np.frombuffer(b"".join(hashes), dtype=np.uint64).reshape(n, -1)
    pairs: list[tuple[int, int]] = []
    step = max(1, _PAIR_BLOCK // (n * words.shape[1]))
    for start in range(0, n, step):
        block = words[start:start + step]
        distance = np.bitwise_count(block[:, None, :] ^ words[None, start:, :]).sum(
            axis=2, dtype=np.uint16)
        rows, cols = np.nonzero(distance <= max_distance)
        keep = cols > rows
        pairs.extend(zip((rows[keep] + start).tolist(), (cols[keep] + start).tolist(),
                         strict=True))
    return pairs
