"""The preprocessed image cache: every image decoded once, at the training size, on disk.

Each image goes through ``load_image`` and ``model_input`` once and lands as one row of a
memory-mapped ``uint8`` array ``images.npy`` of shape (N, S, S); training slices batches from
it, so memory stays flat however large the dataset. Rows are keyed per image by
``file_key`` (the file's size, modification time in nanoseconds and a BLAKE2b hash of its first
and last 64 KiB: fast, and it changes when the file does), the size and
``INTENSITY_CHAIN``. A cache folder is named by the hash of all its row keys, so the same
images at the same size reuse it whole across epochs and runs; a new image list (more
images, a subset, a cache stopped half-way) copies every row it can from the other caches of
that size and chain and decodes only the rest.

A folder holds ``images.npy`` and ``index.json`` (keys, unreadable files with the reason,
and each image's DICOM modality / body part / view). ``index.json`` is written last with
``os.replace``: a folder without it is not a cache. Unreadable images are recorded and
excluded, never fatal; a cache keeps its failures until the file itself changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cxr_desktop.core import paths
from cxr_desktop.core.atomic import atomic_write_json
from cxr_desktop.core.errors import CxrError, first_line
from cxr_desktop.core.io import INTENSITY_CHAIN, load_image, model_input

CACHE_FORMAT = 1
HASH_CHUNK = 64 * 1024
INDEX_NAME = "index.json"
IMAGES_NAME = "images.npy"
PROGRESS_INTERVAL_S = 0.1

Progress = Callable[[int, int], None]
ShouldStop = Callable[[], bool]


def file_key(path: str | os.PathLike[str]) -> str:
    """Content key of one file: size, mtime_ns and BLAKE2b of its first and last 64 KiB."""
    stat = os.stat(path)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{stat.st_size}:{stat.st_mtime_ns}:".encode())
    with open(path, "rb") as handle:
        digest.update(handle.read(HASH_CHUNK))
        if stat.st_size > 2 * HASH_CHUNK:
            handle.seek(-HASH_CHUNK, os.SEEK_END)
        digest.update(handle.read(HASH_CHUNK))
    return digest.hexdigest()


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


@dataclass
class ImageCache:
    """An open cache: ``images[row]`` is the model input of ``paths[row]``."""

    directory: Path
    images: np.ndarray
    size: int
    paths: list[str]
    keys: list[str | None]
    failed: dict[int, str] = field(default_factory=dict)
    scope: list[list[str | None] | None] = field(default_factory=list)
    complete: bool = True
    decoded: int = 0
    reused: int = 0

    @property
    def valid(self) -> np.ndarray:
        """Boolean mask of rows that hold an image (readable and built)."""
        mask = np.array([key is not None for key in self.keys], dtype=bool)
        if self.failed:
            mask[list(self.failed)] = False
        return mask

    def fingerprint(self) -> str:
        """Hash of the row keys: names the set of images, in order, at this size."""
        return self.directory.name


def _cache_id(keys: Sequence[str | None], size: int) -> str:
    blob = json.dumps([CACHE_FORMAT, size, INTENSITY_CHAIN, list(keys)]).encode()
    return hashlib.blake2b(blob, digest_size=16).hexdigest()


def _read_index(directory: Path) -> dict | None:
    try:
        index = json.loads((directory / INDEX_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = (
        isinstance(index, dict)
        and index.get("format") == CACHE_FORMAT
        and index.get("intensity_chain") == INTENSITY_CHAIN
        and (directory / IMAGES_NAME).is_file()
    )
    return index if ok else None


def _open(
    directory: Path, index: dict, path_list: list[str], keys_now: Sequence[str | None]
) -> ImageCache:
    images = np.load(directory / IMAGES_NAME, mmap_mode="r")
    return ImageCache(
        directory=directory,
        images=images,
        size=int(index["size"]),
        paths=path_list,
        keys=list(keys_now),
        failed={int(k): v for k, v in index["failed"].items()},
        scope=list(index["scope"]),
    )


def _donors(root: Path, wanted: set[str]) -> dict[str, tuple[Path, int, list | None]]:
    """Rows of other caches of this size and chain whose key is wanted: key -> (dir, row)."""
    found: dict[str, tuple[Path, int, list | None]] = {}
    for directory in sorted(root.iterdir()) if root.is_dir() else []:
        index = _read_index(directory)
        if index is None:
            continue
        failed = set(index["failed"])
        for row, key in enumerate(index["keys"]):
            if key in wanted and key not in found and str(row) not in failed:
                found[key] = (directory, row, index["scope"][row])
    return found


def _decode(path: str, size: int) -> tuple[np.ndarray, list[str | None]]:
    rg = load_image(path)
    return model_input(rg, size), [rg.modality, rg.body_part, rg.view_position]


def _keys(paths_: Sequence[str], workers: int) -> tuple[list[str | None], dict[int, str]]:
    def one(path: str) -> str | OSError:
        try:
            return file_key(path)
        except OSError as exc:
            return exc

    keys: list[str | None] = []
    failed: dict[int, str] = {}
    with ThreadPoolExecutor(workers) as pool:
        for row, result in enumerate(pool.map(one, paths_)):
            if isinstance(result, OSError):
                keys.append(None)
                failed[row] = f"{paths_[row]}: cannot read file ({result.strerror or result})"
            else:
                keys.append(result)
    return keys, failed


def build_cache(
    image_paths: Sequence[str | os.PathLike[str]],
    size: int,
    *,
    root: str | os.PathLike[str] | None = None,
    workers: int = 0,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
) -> ImageCache:
    """Open the cache for these images at ``size``, building what is missing in parallel.

    ``progress(done, total)`` is called at the start, at the end and at most ten times a
    second between (each call repaints a progress bar in the GUI); ``should_stop()`` is
    checked between images: when it turns true the rows done so far are kept (reused by the
    next build) and the returned cache has ``complete=False``.
    """
    path_list = [os.fspath(p) for p in image_paths]
    workers = workers or default_workers()
    root = Path(root) if root else paths.cache_dir() / "preprocessed"
    size_root = root / f"{size}px"
    keys, failed = _keys(path_list, workers)
    directory = size_root / _cache_id(keys, size)
    index = _read_index(directory)
    if index is not None and index.get("complete") and index["keys"] == keys:
        if progress:
            progress(len(keys), len(keys))
        return _open(directory, index, path_list, keys)
    return _build(directory, path_list, keys, failed, size, workers, progress, should_stop)


def _build(
    directory: Path,
    path_list: list[str],
    keys: list[str | None],
    failed: dict[int, str],
    size: int,
    workers: int,
    progress: Progress | None,
    should_stop: ShouldStop | None,
) -> ImageCache:
    total = len(path_list)
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".images.", suffix=".npy.partial", dir=directory)
    os.close(fd)
    tmp = Path(tmp_name)
    scope: list[list[str | None] | None] = [None] * total
    done_keys: list[str | None] = [None] * total
    try:
        images = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                           shape=(total, size, size))
        donors = _donors(directory.parent, {k for k in keys if k is not None})
        reused, sources = _copy_donor_rows(images, keys, donors, scope, done_keys)
        todo = [row for row in range(total) if keys[row] is not None and done_keys[row] is None]
        done = total - len(todo)
        last_report = -PROGRESS_INTERVAL_S
        stopped = False
        decoded = 0

        def report(force: bool = False) -> None:
            nonlocal last_report
            now = time.monotonic()
            if progress and (force or now - last_report >= PROGRESS_INTERVAL_S):
                last_report = now
                progress(done, total)

        report(force=True)
        with ThreadPoolExecutor(workers) as pool:
            pending: dict[Future, int] = {}
            queue = iter(todo)
            while True:
                while not stopped and len(pending) < 2 * workers:
                    if should_stop and should_stop():
                        stopped = True
                        break
                    row = next(queue, None)
                    if row is None:
                        break
                    pending[pool.submit(_decode, path_list[row], size)] = row
                if not pending:
                    break
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    row = pending.pop(future)
                    try:
                        images[row], scope[row] = future.result()
                        done_keys[row] = keys[row]
                        decoded += 1
                    except (CxrError, OSError, ValueError, RuntimeError, MemoryError) as exc:
                        failed[row] = str(exc) if isinstance(exc, CxrError) else (
                            f"{path_list[row]}: {type(exc).__name__}: {first_line(exc)}")
                    done += 1
                report()
        report(force=True)
        images.flush()
        del images
        complete = not stopped
        os.replace(tmp, directory / IMAGES_NAME)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    index = {
        "format": CACHE_FORMAT,
        "intensity_chain": INTENSITY_CHAIN,
        "size": size,
        "complete": complete,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "paths": path_list,
        "keys": keys if complete else done_keys,
        "failed": {str(row): reason for row, reason in sorted(failed.items())},
        "scope": scope,
    }
    atomic_write_json(directory / INDEX_NAME, index)
    if complete:
        for source in sources - {directory}:
            source_index = _read_index(source)
            if source_index is not None and not source_index.get("complete"):
                shutil.rmtree(source, ignore_errors=True)
    cache = _open(directory, index, path_list, keys if complete else done_keys)
    cache.complete = complete
    cache.decoded = decoded
    cache.reused = reused
    return cache


def _copy_donor_rows(
    images: np.ndarray,
    keys: list[str | None],
    donors: dict[str, tuple[Path, int, list | None]],
    scope: list[list[str | None] | None],
    done_keys: list[str | None],
) -> tuple[int, set[Path]]:
    """Copy rows found in other caches; returns how many and from which folders."""
    by_source: dict[Path, list[tuple[int, int]]] = {}
    for row, key in enumerate(keys):
        if key is not None and key in donors:
            source, source_row, source_scope = donors[key]
            by_source.setdefault(source, []).append((row, source_row))
            scope[row] = source_scope
            done_keys[row] = key
    for source, pairs in by_source.items():
        source_images = np.load(source / IMAGES_NAME, mmap_mode="r")
        for row, source_row in pairs:
            images[row] = source_images[source_row]
        del source_images
    return sum(len(p) for p in by_source.values()), set(by_source)
