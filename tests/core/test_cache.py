"""The preprocessed cache: decoded once, reused per image, failures kept out, atomic."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from blobs import blob_image
from PIL import Image

from cxr_desktop.core.data import cache as cache_module
from cxr_desktop.core.data.cache import build_cache, file_key
from cxr_desktop.core.io import load_image, model_input


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    rng = np.random.default_rng(1)
    paths = []
    for index in range(6):
        path = tmp_path / "img" / f"{index}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(blob_image(rng, index % 2 == 1, size=50 + index)).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def count_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []

    def counting(path: str):
        calls.append(str(path))
        return load_image(path)

    monkeypatch.setattr(cache_module, "load_image", counting)
    return calls


def test_rows_are_model_inputs_and_reused(tmp_path, images, count_loads):
    progress: list[tuple[int, int]] = []
    cache = build_cache(images, 32, root=tmp_path / "c", workers=2,
                        progress=lambda d, t: progress.append((d, t)))
    assert cache.images.shape == (6, 32, 32) and cache.images.dtype == np.uint8
    assert isinstance(cache.images, np.memmap)
    for row, path in enumerate(images):
        np.testing.assert_array_equal(cache.images[row], model_input(load_image(path), 32))
    assert cache.complete and cache.decoded == 6 and cache.valid.all()
    assert progress[-1] == (6, 6) and len(count_loads) == 6
    assert cache.scope[0] == [None, None, None]

    again = build_cache(images, 32, root=tmp_path / "c")
    assert len(count_loads) == 6, "a complete cache must not decode again"
    assert again.directory == cache.directory and again.decoded == 0
    np.testing.assert_array_equal(np.asarray(again.images), np.asarray(cache.images))

    other_size = build_cache(images, 24, root=tmp_path / "c")
    assert len(count_loads) == 12 and other_size.images.shape == (6, 24, 24)


def test_progress_is_reported_at_most_ten_times_a_second(tmp_path, images, monkeypatch):
    """One call per image would make the GUI repaint its progress bar per image."""
    def slow_load(path):
        time.sleep(0.03)
        return load_image(path)

    monkeypatch.setattr(cache_module, "load_image", slow_load)
    many = [images[i % 6].parent / f"copy{i}.png" for i in range(24)]
    for index, path in enumerate(many):
        path.write_bytes(images[index % 6].read_bytes() + bytes([index]))  # distinct keys
    progress: list[tuple[int, int]] = []
    started = time.monotonic()
    build_cache(many, 32, root=tmp_path / "c", workers=1,
                progress=lambda d, t: progress.append((d, t)))
    seconds = time.monotonic() - started
    assert progress[0] == (0, 24) and progress[-1] == (24, 24)
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)
    assert 3 <= len(progress) <= 2 + 10 * seconds + 1, (progress, seconds)


def test_new_image_list_decodes_only_new_or_changed_files(tmp_path, images, count_loads):
    build_cache(images[:4], 32, root=tmp_path / "c")
    assert len(count_loads) == 4
    grown = build_cache(images, 32, root=tmp_path / "c")
    assert grown.reused == 4 and grown.decoded == 2
    assert sorted(count_loads[4:]) == sorted(str(p) for p in images[4:])
    changed = images[0]
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(changed)
    os.utime(changed, ns=(1, 1))
    updated = build_cache(images, 32, root=tmp_path / "c")
    assert count_loads[-1] == str(changed) and updated.decoded == 1
    assert updated.images[0].max() == 0


def test_unreadable_images_are_excluded_not_fatal(tmp_path, images):
    broken = tmp_path / "img" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    missing = tmp_path / "img" / "missing.png"
    cache = build_cache([*images, broken, missing], 32, root=tmp_path / "c")
    assert cache.complete
    assert list(cache.valid) == [True] * 6 + [False, False]
    assert set(cache.failed) == {6, 7}
    assert "broken.png" in cache.failed[6] and "missing.png" in cache.failed[7]
    index = json.loads((cache.directory / "index.json").read_text())
    assert set(index["failed"]) == {"6", "7"}


def test_stop_keeps_rows_done_for_the_next_build(tmp_path, images, count_loads):
    checks = iter([False, False] + [True] * 100)
    partial = build_cache(images, 32, root=tmp_path / "c", workers=1,
                          should_stop=lambda: next(checks))
    assert not partial.complete
    done = int(partial.valid.sum())
    assert 0 < done < 6 and len(count_loads) == done
    full = build_cache(images, 32, root=tmp_path / "c")
    assert full.complete and full.reused == done and len(count_loads) == 6
    assert [p.name for p in (tmp_path / "c" / "32px").iterdir()] == [full.directory.name]


def test_a_folder_without_index_is_not_a_cache(tmp_path, images, count_loads):
    cache = build_cache(images, 32, root=tmp_path / "c")
    (cache.directory / "index.json").unlink()
    rebuilt = build_cache(images, 32, root=tmp_path / "c")
    assert rebuilt.decoded == 6 and len(count_loads) == 12
    assert not list(cache.directory.glob("*.partial"))


def test_file_key_follows_content(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"a" * 1_000_000)
    first = file_key(path)
    stat = path.stat()
    with open(path, "r+b") as handle:
        handle.seek(999_999)
        handle.write(b"b")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert file_key(path) != first, "the last bytes are part of the key"
