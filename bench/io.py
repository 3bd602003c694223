"""Median time of load_image + to_display beside plain pydicom decoding of the same files.

Run: ``python bench/io.py [--repeat N]`` (needs pydicom-data, the test extra). The ratio is
ours / plain: what our chain costs on top of pydicom's decode (Modality LUT, inversion, VOI).
"""

from __future__ import annotations

import argparse

import pydicom
from pydicom.data import get_testdata_file
from timing import median_seconds

from cxr_desktop.core.io import load_image, to_display


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"{'file':<14} {'pydicom':>10} {'ours':>10} {'ratio':>7}")
    for name in ("RG1_UNCI.dcm", "RG1_J2KR.dcm"):
        path = get_testdata_file(name)
        plain = median_seconds(lambda p=path: pydicom.dcmread(p).pixel_array, args.repeat)
        ours = median_seconds(lambda p=path: to_display(load_image(p)), args.repeat)
        print(f"{name:<14} {plain * 1000:>8.1f}ms {ours * 1000:>8.1f}ms {ours / plain:>7.2f}")


if __name__ == "__main__":
    main()
