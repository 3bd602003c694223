"""``cxr-desktop demo-data DIR``: write the synthetic Object-CXR-style demo dataset."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from cxr_desktop.core.errors import CxrError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo-data", help="write the synthetic demo dataset (Object-CXR layout)",
        description="Write a deterministic synthetic chest-radiograph dataset laid out like "
        "Object-CXR: train/ dev/ test/ JPEGs and train.csv dev.csv test.csv with shape "
        "annotations; half the images carry a foreign object. One duplicate across splits "
        "and one corrupt file are planted on purpose (see README.txt in DIR).")
    parser.add_argument("directory", metavar="DIR")
    parser.add_argument("--images", type=int, default=200, help="good images (default 200)")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true",
                        help="write into DIR even when it is not empty")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cxr_desktop.core.data.demo import make_demo_dataset

    root = Path(args.directory)
    if root.exists() and not root.is_dir():
        raise CxrError(f"{root}: is a file, not a folder")
    if root.is_dir() and any(root.iterdir()) and not args.force:
        raise CxrError(f"{root}: folder is not empty (use --force to write into it)")
    start = time.perf_counter()
    try:
        summary = make_demo_dataset(root, n_images=args.images, size=args.size, seed=args.seed)
    except ValueError as exc:
        raise CxrError(f"{root}: {exc}") from exc
    print(f"{summary.line()} ({time.perf_counter() - start:.1f} s)")
    return 0
