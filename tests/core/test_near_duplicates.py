"""Near duplicates: copies are found, different look-alike chest phantoms are not."""

from __future__ import annotations

import itertools

from PIL import Image, ImageEnhance

from cxr_desktop.core.data.demo import make_demo_dataset
from cxr_desktop.core.data.imagescan import (
    MAX_HASH_DISTANCE,
    near_duplicate_pairs,
    scan_image,
    thumbnails_correlate,
)


def test_look_alike_phantoms_are_not_near_duplicates(tmp_path):
    summary = make_demo_dataset(tmp_path, n_images=60, size=128, seed=11)
    planted = {p.path for p in summary.planted}
    paths = [p for p in sorted(tmp_path.glob("*/*.jpg"))
             if f"{p.parent.name}/{p.name}" not in planted]
    records = [scan_image(p, i) for i, p in enumerate(paths)]
    # The hash alone pairs some different phantoms at this distance; the thumbnails do not.
    for a, b in near_duplicate_pairs([r.dhash for r in records], MAX_HASH_DISTANCE + 8):
        assert not thumbnails_correlate(records[a].thumb, records[b].thumb), (paths[a], paths[b])
    for a, b in itertools.combinations(range(len(records)), 2):
        assert not thumbnails_correlate(records[a].thumb, records[b].thumb, 0.9995)
    original = paths[0]
    copy = tmp_path / "copy.jpg"
    ImageEnhance.Brightness(Image.open(original)).enhance(1.15).save(copy, quality=40)
    assert thumbnails_correlate(scan_image(original, 0).thumb, scan_image(copy, 1).thumb)
