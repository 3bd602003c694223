"""Dataset indexing and checking speed on generated data.

Indexes 100 000 files in class folders, a 100 000-row NIH-style CSV, and a 100 000-row
RSNA-style table whose ids have no extension, with two box rows per positive, over DICOMs in
nested folders (found by stem); target: under 10 s each; images are never opened. Then
checks ~2 000 small PNGs with the default thread pool
and with one thread, measured in the same run, and prints the ratio.

    python bench/index.py [--files 100000] [--images 2000] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from cxr_desktop.core.data import check_dataset, open_dataset

FINDINGS = ("No Finding", "Effusion", "Atelectasis|Mass", "Nodule", "Cardiomegaly|Edema")
TARGET_S = 10.0


def make_index_data(root: Path, n_files: int) -> tuple[Path, Path]:
    """``n_files`` empty ``.png`` files in two class folders, and an NIH CSV naming them."""
    folders = root / "folders"
    rows = ["Image Index,Finding Labels,Follow-up #,Patient ID,View Position"]
    for cls in ("normal", "abnormal"):
        (folders / cls).mkdir(parents=True)
    for i in range(n_files):
        name = f"{i:08d}_000.png"
        cls = "abnormal" if i % 3 == 0 else "normal"
        with open(folders / cls / name, "wb"):
            pass
        rows.append(f"{name},{FINDINGS[i % len(FINDINGS)]},0,{i // 4},{'PA' if i % 2 else 'AP'}")
    table = root / "Data_Entry_2017.csv"
    table.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folders, table


def make_rsna_data(root: Path, n_files: int) -> Path:
    """``n_files`` empty ``<id>.dcm`` files nested two folders deep and an RSNA-style table
    naming them by id only (a third positive, with two box rows each)."""
    rows = ["patientId,x,y,width,height,Target"]
    for i in range(n_files):
        pid = f"{i:08x}-5204-4f31-98e0-f35e4b00004a"
        folder = root / "images" / f"{i % 100:02d}" / f"{i // 100 % 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"{pid}.dcm", "wb"):
            pass
        if i % 3:
            rows.append(f"{pid},,,,,0")
        else:
            rows += [f"{pid},{10 + i % 50},20.0,100.0,80.0,1", f"{pid},500,400,90,120,1"]
    table = root / "stage_2_train_labels.csv"
    table.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return table


def make_check_data(root: Path, n_images: int, size: int = 128) -> Path:
    """``n_images`` small, distinct, smooth PNGs in two class folders."""
    rng = np.random.default_rng(0)
    for i in range(n_images):
        folder = root / ("ill" if i % 2 else "normal")
        folder.mkdir(parents=True, exist_ok=True)
        coarse = Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8))
        coarse.resize((size, size), Image.Resampling.BICUBIC).save(folder / f"{i:05d}.png")
    return root


def timed(what: str, call):
    start = time.perf_counter()
    result = call()
    elapsed = time.perf_counter() - start
    print(f"{what}: {elapsed:.2f} s")
    return result, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--images", type=int, default=2_000)
    parser.add_argument("--workers", type=int, default=None, help="threads (default: auto)")
    args = parser.parse_args()
    print(f"cpus: {os.cpu_count()}")
    with tempfile.TemporaryDirectory(prefix="cxr-bench-") as tmp:
        root = Path(tmp)
        (folders, table), _ = timed(f"generate {args.files} files + CSV",
                                    lambda: make_index_data(root / "index", args.files))
        spec, folder_s = timed("index class folders", lambda: open_dataset(folders))
        assert len(spec.items) == args.files
        spec, csv_s = timed("index NIH CSV", lambda: open_dataset(table))
        assert len(spec.items) == args.files and not spec.problems
        rsna, _ = timed(f"generate {args.files} nested DICOM names + RSNA table",
                        lambda: make_rsna_data(root / "rsna", args.files))
        spec, rsna_s = timed("index RSNA table (ids without extension)",
                             lambda: open_dataset(rsna))
        assert len(spec.items) == args.files and not spec.problems
        for what, seconds in (("folders", folder_s), ("csv", csv_s), ("rsna", rsna_s)):
            print(f"  {what}: {seconds / TARGET_S:.2f} of the {TARGET_S:.0f} s budget "
                  f"({args.files / seconds:,.0f} entries/s)")

        images, _ = timed(f"generate {args.images} PNGs",
                          lambda: make_check_data(root / "check", args.images))
        spec = open_dataset(images)
        threaded, threaded_s = timed("checks, thread pool",
                                     lambda: check_dataset(spec, workers=args.workers))
        single, single_s = timed("checks, one thread (baseline)",
                                 lambda: check_dataset(spec, workers=1))
        assert [p.kind for p in threaded.problems] == [p.kind for p in single.problems]
        print(f"  speed-up of the thread pool over one thread: {single_s / threaded_s:.2f}x "
              f"({args.images / threaded_s:,.0f} vs {args.images / single_s:,.0f} images/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
