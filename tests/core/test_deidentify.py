"""De-identification (PS3.15 Basic Profile) of a small set built from real pydicom-data
files (a CR chest and its JPEG 2000 twin, a CT, an MR) and files made here (2 patients x
2 studies x 2 series), all given known identifiers: names, IDs, dates, accession numbers,
institution and physicians, a private tag holding the name, sequences holding more.

After a run no identifier may appear in the bytes of any output file, studies and series
keep their grouping under new UIDs and the pixel data is byte for byte the same.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from public_layouts import write_dicom
from pydicom.dataset import Dataset
from pydicom.fileset import FileSet
from pydicom.uid import generate_uid

from cxr_desktop.core.dicom_out.deid_dataset import DeidOptions, shift_date
from cxr_desktop.core.dicom_out.deid_profile import profile_action
from cxr_desktop.core.dicom_out.deidentify import deidentify
from cxr_desktop.core.errors import FileError

PATIENTS = [
    {"PatientName": "Quimbyfield^Josephine^Marguerite", "PatientID": "PID-QUIMBY-778121",
     "PatientBirthDate": "19230915", "OtherPatientIDs": "MRN-004211-QUIMBY"},
    {"PatientName": "Vanhoutenberg^Kirkland^Everett", "PatientID": "PID-VANHOUT-742213",
     "PatientBirthDate": "19560512", "OtherPatientIDs": "MRN-009913-VANHOUT"},
]
SITE = {"InstitutionName": "Springfield General Hospital",
        "InstitutionAddress": "742 Evergreen Terrace Springfield",
        "ReferringPhysicianName": "Hibbertson^Julius",
        "PerformingPhysicianName": "Rivierano^Nicolas", "OperatorsName": "Smithersby^Waylon",
        "StationName": "XRAYROOM-SPRINGFIELD"}
DATES = ["20190314", "20190320", "20200111", "20210705", "20220918"]
PRIVATE_CREATOR = "ACME HOSPITAL PACS"


def _plant(ds: Dataset, patient: int, study: int) -> None:
    """Known identifiers in the header, in a private tag and in nested sequences."""
    for keyword, value in {**PATIENTS[patient], **SITE}.items():
        setattr(ds, keyword, value)
    ds.AccessionNumber = f"ACCN-{patient}{study}-88120"
    ds.StudyID = f"STUDYID-{patient}{study}-5512"
    for keyword in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
        setattr(ds, keyword, DATES[study])
    ds.StudyTime = ds.SeriesTime = "101530"
    ds.StudyDescription = f"Chest PA for {PATIENTS[patient]['PatientName'].split('^')[0]}"
    ds.SeriesNumber, ds.InstanceNumber = ds.get("SeriesNumber") or 1, 1
    block = ds.private_block(0x0011, PRIVATE_CREATOR, create=True)
    block.add_new(0x01, "PN", PATIENTS[patient]["PatientName"])
    request = Dataset()
    request.RequestedProcedureID = f"REQPROC-{patient}{study}-99812"
    request.AccessionNumber = ds.AccessionNumber
    ds.RequestAttributesSequence = [request]
    reference = Dataset()
    reference.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    reference.ReferencedSOPInstanceUID = ds.StudyInstanceUID
    ds.ReferencedStudySequence = [reference]


def _real(testdata, name: str, out: Path, patient: int, study: int,
          study_uid: str | None = None) -> Path:
    ds = pydicom.dcmread(testdata(name))
    if study_uid:
        ds.StudyInstanceUID = study_uid
    _plant(ds, patient, study)
    out.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(out, enforce_file_format=True)
    return out


@pytest.fixture(scope="module")
def source(tmp_path_factory, testdata) -> Path:
    root = tmp_path_factory.mktemp("source") / "export"
    cr_study = generate_uid()
    _real(testdata, "RG1_UNCI.dcm", root / "real" / "chest.dcm", 0, 0, cr_study)
    j2k = _real(testdata, "RG1_J2KR.dcm", root / "real" / "chest_j2k.dcm", 0, 0, cr_study)
    _real(testdata, "CT_small.dcm", root / "real" / "ct_without_suffix", 1, 1)
    _real(testdata, "MR_small.dcm", root / "real" / "mr.dcm", 1, 2)
    referenced = pydicom.dcmread(j2k).SOPInstanceUID
    pixels = np.random.default_rng(0).integers(0, 255, (32, 32), dtype=np.uint8)
    for patient in (0, 1):
        for study in (3, 4):
            study_uid = generate_uid()
            for series in (1, 2):
                path = root / "made" / f"p{patient}" / f"s{study}" / f"{series}.dcm"
                write_dicom(path, pixels, StudyInstanceUID=study_uid, SeriesNumber=series,
                            BurnedInAnnotation="YES" if (patient, series) == (0, 1) else "NO")
                ds = pydicom.dcmread(path)
                _plant(ds, patient, study)
                image = Dataset()
                image.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
                image.ReferencedSOPInstanceUID = referenced
                ds.ReferencedImageSequence = [image]
                ds.save_as(path, enforce_file_format=True)
    (root / "made" / "labels.csv").write_text("image,label\n1.dcm,1\n", encoding="utf-8")
    (root / "made" / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10")
    return root


def _sources(root: Path) -> dict[str, Dataset]:
    """The source instances by SOP Instance UID."""
    out = {}
    for path in root.rglob("*"):
        if path.is_file() and path.suffix != ".csv" and path.name != "broken.dcm":
            ds = pydicom.dcmread(path)
            out[ds.SOPInstanceUID] = ds
    return out


def _identifiers(root: Path) -> set[str]:
    """Every identifier planted or already in the sources: names and their parts, IDs,
    accession numbers, site, dates, the UIDs of instances, series, studies and frames."""
    found = {PRIVATE_CREATOR, *SITE.values(), "Springfield", "Hibbertson", "Rivierano",
             "Smithersby", *DATES}
    for patient in PATIENTS:
        found |= set(patient.values()) | set(patient["PatientName"].split("^"))
    for ds in _sources(root).values():
        found |= {ds.AccessionNumber, ds.StudyID, ds.SOPInstanceUID, ds.StudyInstanceUID,
                  ds.SeriesInstanceUID, ds.RequestAttributesSequence[0].RequestedProcedureID}
        found |= {ds.FrameOfReferenceUID} if "FrameOfReferenceUID" in ds else set()
    return found


def _leaks(folder: Path, identifiers: set[str]) -> list[str]:
    leaks = []
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes().lower()
            leaks += [f"{path.name}: {i}" for i in identifiers if i.lower().encode() in data]
    return leaks


def _key(path: Path) -> dict[str, str]:
    with open(path, encoding="utf-8") as handle:
        return {row["original"]: row["new"] for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def shifted(source, tmp_path_factory):
    """The default run (dates shifted) with a key."""
    out = tmp_path_factory.mktemp("shifted")
    key = out / "key.csv"
    report = deidentify(source, out / "copy", key=key)
    return report, key


def test_no_identifier_left_in_any_output_file(source, shifted):
    report, _ = shifted
    assert len(report.written) == 12
    assert _leaks(report.destination, _identifiers(source)) == []
    for path in report.written:
        ds = pydicom.dcmread(path)
        assert ds.PatientIdentityRemoved == "YES"
        assert [i.CodeValue for i in ds.DeidentificationMethodCodeSequence] == \
            ["113100", "113107"]
        assert ds.LongitudinalTemporalInformationModified == "MODIFIED"
        assert not [e for e in ds.iterall() if e.tag.is_private]
        assert "RequestAttributesSequence" not in ds and "StudyDescription" not in ds
        assert ds.PatientBirthDate == "" and ds.AccessionNumber == ""
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert path.relative_to(report.destination).parts[0] == ds.PatientID


def test_grouping_kept_under_new_uids_and_pixels_identical(source, shifted):
    report, key = shifted
    uids, sources = _key(key), _sources(source)
    studies, series, patients = {}, {}, {}
    for path in report.written:
        out = pydicom.dcmread(path)
        src = sources[next(old for old, new in uids.items() if new == out.SOPInstanceUID)]
        assert out.StudyInstanceUID == uids[src.StudyInstanceUID] != src.StudyInstanceUID
        assert out.SeriesInstanceUID == uids[src.SeriesInstanceUID]
        studies.setdefault(src.StudyInstanceUID, set()).add(out.StudyInstanceUID)
        series.setdefault(src.SeriesInstanceUID, set()).add(out.SeriesInstanceUID)
        patients.setdefault(src.PatientID, set()).add(out.PatientID)
        assert out.file_meta.TransferSyntaxUID == src.file_meta.TransferSyntaxUID
        assert out.PixelData == src.PixelData
        if "ReferencedImageSequence" in src:  # a reference to another file follows it
            assert out.ReferencedImageSequence[0].ReferencedSOPInstanceUID == \
                uids[src.ReferencedImageSequence[0].ReferencedSOPInstanceUID]
    assert len(studies) == 7 == len(set().union(*studies.values()))
    assert len(series) == 11 == len(set().union(*series.values()))
    assert sorted(map(sorted, patients.values())) == [["ANON-0001"], ["ANON-0002"]]
    assert (report.patients, report.studies, report.series) == (2, 7, 11)


def test_shifted_dates_keep_each_patients_intervals(shifted):
    report, _ = shifted
    dates = {}
    for path in report.written:
        ds = pydicom.dcmread(path)
        dates.setdefault(ds.PatientID, set()).add(ds.StudyDate)
    for days in dates.values():
        assert not days & set(DATES)
    as_days = {p: sorted(np.datetime64(f"{d[:4]}-{d[4:6]}-{d[6:]}") for d in v)
               for p, v in dates.items()}
    # patient 1's studies were 2019-03-14, 2020-01-11... : the same gaps after the shift
    gaps = np.diff(as_days["ANON-0001"]).astype(int).tolist()
    assert gaps == np.diff([np.datetime64(d) for d in ("2019-03-14", "2021-07-05",
                                                       "2022-09-18")]).astype(int).tolist()


def test_dates_removed_or_kept_by_option(source, tmp_path):
    removed = deidentify(source, tmp_path / "removed", DeidOptions(dates="remove"))
    kept = deidentify(source, tmp_path / "kept", DeidOptions(dates="keep"))
    out = pydicom.dcmread(removed.written[0])
    # Z where the table allows it, else a dummy (Series Date is X/D)
    assert out.StudyDate == "" == out.ContentDate and out.SeriesDate == "19000101"
    assert out.LongitudinalTemporalInformationModified == "REMOVED"
    assert [i.CodeValue for i in out.DeidentificationMethodCodeSequence] == ["113100"]
    assert _leaks(removed.destination, set(DATES)) == []
    assert pydicom.dcmread(kept.written[0]).StudyDate in DATES


def test_keep_descriptions_cleans_them(source, tmp_path):
    report = deidentify(source, tmp_path / "copy", DeidOptions(keep_descriptions=True))
    ds = pydicom.dcmread(report.written[0])
    assert ds.StudyDescription == "Chest PA for ***"
    assert ds.RequestAttributesSequence[0].AccessionNumber == ""
    assert "RequestedProcedureID" not in ds.RequestAttributesSequence[0]
    assert "113105" in [i.CodeValue for i in ds.DeidentificationMethodCodeSequence]
    assert _leaks(report.destination, _identifiers(source)) == []


def test_keep_folders_renames_only_identifying_folders(tmp_path, testdata, monkeypatch):
    ds = pydicom.dcmread(testdata("CT_small.dcm"))
    src = tmp_path / "dataset"
    sop_uids = []
    for name in ("NORMAL", ds.StudyInstanceUID, ds.PatientID):
        (src / name).mkdir(parents=True)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        sop_uids.append(ds.SOPInstanceUID)
        ds.save_as(src / name / f"{ds.SOPInstanceUID}.dcm")
    shutil.copy(next((src / "NORMAL").iterdir()), src / "NORMAL" / "again.dcm")
    monkeypatch.chdir(tmp_path)  # a relative SRC, as typed on the command line
    report = deidentify("dataset", "copy", DeidOptions(keep_folders=True))
    folders = sorted(p.parent.name for p in report.written)
    assert folders[-2:] == ["ANON-0001", "NORMAL"] and len(folders) == 3
    assert ds.StudyInstanceUID not in folders and folders[0].startswith("2.25.")
    assert [s.reason for s in report.skipped] == ["a second copy of an instance already copied"]
    assert not {p.stem for p in report.written} & set(sop_uids)


def test_key_written_only_when_asked(source, tmp_path):
    report = deidentify(source, tmp_path / "copy")
    assert report.key is None
    assert [p.name for p in tmp_path.iterdir()] == ["copy"]
    assert {p.suffix for p in report.destination.rglob("*") if p.is_file()} == {".dcm"}


def test_skipped_files_and_burned_in_warnings(source, shifted):
    report, _ = shifted
    skipped = {s.path.name: s for s in report.skipped}
    assert set(skipped) == {"labels.csv", "broken.dcm"}
    assert skipped["broken.dcm"].failed and not skipped["labels.csv"].failed
    assert "not a readable DICOM file" in skipped["broken.dcm"].reason
    reasons = sorted(reason.split(":")[0] for _, reason in report.warnings)
    assert reasons == ["Burned In Annotation YES"] * 2 + ["Burned In Annotation not stated"] * 4


@pytest.mark.parametrize("where", ["inside", "not empty", "key inside"])
def test_bad_destinations_refused_in_one_line(source, tmp_path, where):
    dst, key = tmp_path / "copy", None
    if where == "inside":
        dst = source / "made" / "anon"
    elif where == "not empty":
        dst.mkdir()
        (dst / "x.txt").write_text("x", encoding="utf-8")
    else:
        key = dst / "key.csv"
    with pytest.raises(FileError) as error:
        deidentify(source, dst, key=key)
    assert "\n" not in str(error.value)
    assert not (source / "made" / "anon").exists()


def test_real_dicomdir_gives_a_deidentified_file_set(tmp_path):
    import pydicom.data

    dicomdir = Path(pydicom.data.get_testdata_file("DICOMDIR"))
    src = Path(shutil.copytree(dicomdir.parent, tmp_path / "cd"))
    originals = {"Doe^Archibald", "Archibald", "Doe^Peter", "77654033", "98890234"}
    for instance in FileSet(src / "DICOMDIR"):
        ds = instance.load()
        originals |= {ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID,
                      ds.StudyDate}
    report = deidentify(src / "DICOMDIR", tmp_path / "copy")
    assert report.dicomdir == tmp_path / "copy" / "DICOMDIR"
    assert len(report.written) == 31 and report.skipped == []
    copy = FileSet(report.dicomdir)
    assert len(copy) == 31
    assert sorted(copy.find_values("PatientID")) == ["ANON-0001", "ANON-0002"]
    assert len(copy.find_values("StudyInstanceUID")) == report.studies == 6
    assert _leaks(tmp_path / "copy", originals) == []
    assert not list((tmp_path / "copy").glob(".deid-*"))


def test_profile_table_rows():
    assert profile_action(0x00100010) == "Z"  # Patient's Name
    assert profile_action(0x00080050) == "Z"  # Accession Number
    assert profile_action(0x00080080) == "X/Z/D"  # Institution Name
    assert profile_action(0x0020000D) == "U"  # Study Instance UID
    assert profile_action(0x00081140) == "X/Z/U*"  # Referenced Image Sequence
    assert profile_action(0x50020010) == "X"  # curve data
    assert profile_action(0x60023000) == "X" and profile_action(0x60000010) is None
    assert profile_action(0x00280010) is None  # Rows: kept


@pytest.mark.parametrize(("value", "vr", "days", "expected"), [
    ("20190314", "DA", -365, "20180314"), ("20200301", "DA", -1, "20200229"),
    ("20190314101530.5+0100", "DT", -10, "20190304101530.5+0100"),
    ("2019", "DT", -10, ""), ("2019.03.14", "DA", -10, ""), ("20191332", "DA", -1, ""),
])
def test_shift_date(value, vr, days, expected):
    assert shift_date(value, vr, days) == expected
