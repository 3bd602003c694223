"""The public datasets' folder layouts, made in a temporary folder for the import tests.

The label rows are real (``tests/fixtures/public_labels``, see its README); the images are
made here from the real CR chest of pydicom-data (``RG1_UNCI.dcm``), each one a shifted,
re-contrasted copy so that no two are alike, at the size the real dataset has (1024 px for
SIIM, RSNA and NIH) so that their boxes and masks fall inside.
"""

from __future__ import annotations

import functools
import gzip
import io
import shutil
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    SecondaryCaptureImageStorage,
    generate_uid,
)

LABELS = Path(__file__).resolve().parent.parent / "fixtures" / "public_labels"


@functools.lru_cache(maxsize=4)
def _chest(size: int) -> np.ndarray:
    from cxr_desktop.core.io import load_image, to_display

    radiograph = load_image(get_testdata_file("RG1_UNCI.dcm"))
    gray = to_display(radiograph)
    return np.asarray(Image.fromarray(gray).resize((size, size), Image.Resampling.BILINEAR))


def chest_pixels(seed: int, size: int = 1024) -> np.ndarray:
    """A real chest radiograph, cropped, turned, re-exposed and lit unevenly by ``seed``
    (uint8, size x size): no two seeds look alike to the near-duplicate check."""
    rng = np.random.default_rng(seed)
    base = Image.fromarray(_chest(1024))
    side = int(1024 * rng.uniform(0.6, 0.85))
    x0, y0 = rng.integers(0, 1024 - side, 2)
    crop = base.rotate(float(rng.uniform(-8, 8)), resample=Image.Resampling.BILINEAR) \
        .crop((x0, y0, x0 + side, y0 + side)).resize((size, size), Image.Resampling.BILINEAR)
    pixels = (np.asarray(crop, dtype=np.float32) / 255) ** rng.uniform(0.6, 1.6)
    ramp = np.linspace(-1, 1, size, dtype=np.float32)
    light = rng.uniform(-0.15, 0.15) * ramp[None, :] + rng.uniform(-0.15, 0.15) * ramp[:, None]
    return np.clip((pixels + light) * 255, 0, 255).astype(np.uint8)


def write_dicom(path: Path, pixels: np.ndarray, *, jpeg: bool = False,
                **elements: object) -> Path:
    """A MONOCHROME2 8-bit radiograph DICOM, uncompressed or JPEG baseline (as SIIM's)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = str(elements.pop("SOPInstanceUID", generate_uid()))
    meta.TransferSyntaxUID = JPEGBaseline8Bit if jpeg else ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, \
        meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.BodyPartExamined = "CR", "CHEST"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    if jpeg:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
        ds.PixelData = encapsulate([buffer.getvalue()])
        ds["PixelData"].VR = "OB"
    else:
        ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _ids(table: Path, column: int = 0) -> list[str]:
    lines = table.read_text(encoding="utf-8").splitlines()[1:]
    return list(dict.fromkeys(line.split(",")[column] for line in lines if line))


def make_siim(root: Path) -> Path:
    """``train-rle.csv`` beside ``dicom-images-train/STUDY/SERIES/<ImageId>.dcm`` (JPEG
    baseline, 1024 px, SOPInstanceUID = ImageId, one patient per image)."""
    root.mkdir(parents=True, exist_ok=True)
    table = shutil.copy(LABELS / "siim_train-rle.csv", root / "train-rle.csv")
    for seed, image_id in enumerate(_ids(Path(table))):
        study, series = generate_uid(), generate_uid()
        write_dicom(root / "dicom-images-train" / study / series / f"{image_id}.dcm",
                    chest_pixels(seed), jpeg=True, SOPInstanceUID=image_id,
                    StudyInstanceUID=study, SeriesInstanceUID=series,
                    PatientID=f"{seed:04d}-{image_id[-6:]}", ViewPosition="PA")
    (root / "stage_2_sample_submission.csv").write_text("ImageId,EncodedPixels\n")
    return root


def make_rsna(root: Path) -> Path:
    """``stage_2_train_labels.csv`` beside ``stage_2_train_images/<patientId>.dcm`` (1024 px,
    the real headers' PatientAge a bare number), plus the class-info and submission CSVs."""
    root.mkdir(parents=True, exist_ok=True)
    table = Path(shutil.copy(LABELS / "rsna_stage_2_train_labels.csv",
                             root / "stage_2_train_labels.csv"))
    headers = {line.split(",")[7]: line.split(",")
               for line in (LABELS / "rsna_dicom_headers.csv").read_text().splitlines()[1:]}
    for seed, pid in enumerate(_ids(table)):
        row = headers[pid]
        write_dicom(root / "stage_2_train_images" / f"{pid}.dcm", chest_pixels(100 + seed),
                    PatientID=pid, PatientAge=row[6], PatientSex=row[9],
                    ViewPosition=row[13], Modality=row[5])
    (root / "stage_2_detailed_class_info.csv").write_text("patientId,class\n")
    (root / "stage_2_sample_submission.csv").write_text("patientId,PredictionString\n")
    return root


def make_vindr(root: Path) -> Path:
    """``train.csv`` beside ``train/<image_id>.dicom`` (2300 px, so every box fits)."""
    root.mkdir(parents=True, exist_ok=True)
    table = Path(shutil.copy(LABELS / "vindr_train.csv", root / "train.csv"))
    for seed, image_id in enumerate(_ids(table)):
        write_dicom(root / "train" / f"{image_id}.dicom",
                    chest_pixels(200 + seed, 2300), PatientID=image_id[:8])
    (root / "sample_submission.csv").write_text("image_id,PredictionString\n")
    (root / "test").mkdir()
    return root


def make_nih(root: Path, boxes: bool = True) -> Path:
    """``Data_Entry_2017.csv`` (and ``BBox_List_2017.csv``) beside ``images/*.png``."""
    root.mkdir(parents=True, exist_ok=True)
    table = Path(shutil.copy(LABELS / "nih_Data_Entry_2017.csv", root / "Data_Entry_2017.csv"))
    if boxes:
        shutil.copy(LABELS / "nih_BBox_List_2017.csv", root / "BBox_List_2017.csv")
    for seed, name in enumerate(_ids(table)):
        (root / "images").mkdir(exist_ok=True)
        Image.fromarray(chest_pixels(300 + seed)).save(root / "images" / name, compress_level=1)
    return root


def make_covid(root: Path) -> Path:
    """``metadata.csv`` beside ``images/`` and ``volumes/`` (a CT volume, .nii.gz)."""
    root.mkdir(parents=True, exist_ok=True)
    table = Path(shutil.copy(LABELS / "covid_metadata.csv", root / "metadata.csv"))
    import csv

    with open(table, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for seed, row in enumerate(rows):
        path = root / row["folder"] / row["filename"]
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.name.endswith(".nii.gz"):
            path.write_bytes(gzip.compress(b"\x5c\x01" + bytes(346)))
        else:
            Image.fromarray(chest_pixels(400 + seed, 512)).save(path)
    return root


def make_covid_small(root: Path) -> Path:
    """``metadata.csv`` naming ``images/COVID-00001.jpg`` (or .png) by id only."""
    root.mkdir(parents=True, exist_ok=True)
    table = Path(shutil.copy(LABELS / "covid_small_metadata.csv", root / "metadata.csv"))
    for seed, image_id in enumerate(_ids(table)):
        suffix = ".png" if seed % 3 == 2 else ".jpg"
        (root / "images").mkdir(exist_ok=True)
        Image.fromarray(chest_pixels(500 + seed, 512)).save(root / "images" / f"{image_id}"
                                                                               f"{suffix}")
    return root


def read_dicom(path: Path) -> pydicom.Dataset:
    return pydicom.dcmread(path)
