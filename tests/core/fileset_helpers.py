"""A DICOM file-set (a DICOMDIR) written with pydicom's FileSet for the tests: real
pydicom-data files (the CR chest, its JPEG 2000 twin, the tibia), files made here (a second
patient's study) and a Basic Text SR that is not an image."""

from __future__ import annotations

from pathlib import Path

import pydicom
from public_layouts import chest_pixels, write_dicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.fileset import FileSet
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"


def _text_sr(study: pydicom.Dataset) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = BASIC_TEXT_SR
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    sr = Dataset()
    sr.file_meta = meta
    sr.SOPClassUID, sr.SOPInstanceUID = BASIC_TEXT_SR, meta.MediaStorageSOPInstanceUID
    for keyword in ("PatientID", "PatientName", "StudyInstanceUID", "StudyDate", "StudyTime",
                    "StudyID", "AccessionNumber"):
        setattr(sr, keyword, getattr(study, keyword, ""))
    sr.Modality, sr.SeriesInstanceUID, sr.SeriesNumber = "SR", generate_uid(), 99
    sr.InstanceNumber, sr.CompletionFlag, sr.VerificationFlag = 1, "COMPLETE", "UNVERIFIED"
    sr.ContentDate, sr.ContentTime = "20260101", "120000"
    sr.ValueType = "CONTAINER"
    title = Dataset()
    title.CodeValue, title.CodingSchemeDesignator = "18748-4", "LN"
    title.CodeMeaning = "Diagnostic Imaging Report"
    sr.ConceptNameCodeSequence = [title]
    return sr


def _ready(ds: pydicom.Dataset, patient: str, study: str) -> pydicom.Dataset:
    """The attributes a file-set record needs (the real files lack some)."""
    ds.PatientID, ds.PatientName, ds.StudyInstanceUID = patient, f"Test^{patient}", study
    for keyword, value in (("StudyDate", "20260101"), ("StudyTime", "120000"),
                           ("StudyID", "1"), ("AccessionNumber", ""), ("SeriesNumber", 1),
                           ("InstanceNumber", 1)):
        if keyword not in ds or ds[keyword].value in (None, ""):
            setattr(ds, keyword, value)
    return ds


def make_fileset(base: Path, testdata) -> Path:
    """``base/cd``: a DICOMDIR over 3 real files of patient A, 2 made files of patient B
    and a Basic Text SR of patient B (not an image)."""
    made = base / "made"
    fs = FileSet()
    study_a, study_b = generate_uid(), generate_uid()
    for name in ("RG1_UNCI.dcm", "RG1_J2KR.dcm", "RG3_UNCI.dcm"):
        ds = _ready(pydicom.dcmread(testdata(name)), "PAT-A", study_a)
        ds.SeriesInstanceUID = generate_uid()
        fs.add(ds)
    for index in range(2):
        path = write_dicom(made / f"b{index}.dcm", chest_pixels(index, 128),
                           SeriesInstanceUID=generate_uid(), ViewPosition="PA")
        ds = _ready(pydicom.dcmread(path), "PAT-B", study_b)
        ds.InstanceNumber = index + 1
        fs.add(ds)
    fs.add(_text_sr(ds))
    fs.write(base / "cd")
    return base / "cd"


