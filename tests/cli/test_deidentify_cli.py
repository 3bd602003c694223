"""``cxr-desktop deidentify SRC DST``: exit status, one-line errors, the JSON summary, the key
only with ``--key``, the options passed on, and no patient identifier ever printed."""

from __future__ import annotations

import csv
import json

import pydicom
import pytest

from cxr_desktop.cli import main

NAME, PATIENT_ID = "Quimbyfield^Josephine", "PID-QUIMBY-778121"


@pytest.fixture
def source(tmp_path, testdata):
    src = tmp_path / "src"
    src.mkdir()
    for name, burned in (("CT_small.dcm", "NO"), ("MR_small.dcm", None)):
        ds = pydicom.dcmread(testdata(name))
        ds.PatientName, ds.PatientID, ds.StudyDate = NAME, PATIENT_ID, "20190314"
        ds.StudyDescription = "Chest for Quimbyfield"
        if burned:
            ds.BurnedInAnnotation = burned
        ds.save_as(src / name)
    return src


def _no_phi(text: str) -> None:
    for identifier in (NAME, "Quimbyfield", PATIENT_ID, "20190314"):
        assert identifier not in text


def test_copy_summary_and_warning(source, tmp_path, capsys):
    assert main(["deidentify", str(source), str(tmp_path / "copy")]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"2 files written to {tmp_path / 'copy'} (1 patient, 2 studies, 2 series)",
        "1 image may show names burned into the pixels: look before sharing the copy"]
    assert err.count("warning: ") == 1 and "Burned In Annotation not stated" in err
    _no_phi(out + err)
    assert not list(tmp_path.glob("*.csv"))


def test_json_key_and_options(source, tmp_path, capsys):
    key = tmp_path / "key.csv"
    assert main(["deidentify", str(source), str(tmp_path / "copy"), "--json", "--key", str(key),
                 "--dates", "remove", "--keep-descriptions"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["written"] == 2 and summary["key"] == str(key)
    assert [w["reason"].split(":")[0] for w in summary["warnings"]] == \
        ["Burned In Annotation not stated"]
    out = pydicom.dcmread(next((tmp_path / "copy").rglob("*.dcm")))
    assert out.StudyDate == "" and out.StudyDescription == "Chest for ***"
    with open(key, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {"PatientID": PATIENT_ID}.items() <= {r["kind"]: r["original"] for r in rows}.items()
    assert any(r["kind"] == "SOPInstanceUID" and r["new"] == out.SOPInstanceUID for r in rows)


def test_broken_file_skipped_in_one_line_and_exit_1(source, tmp_path, capsys):
    (source / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00")
    (source / "notes.txt").write_text("not an image", encoding="utf-8")
    assert main(["deidentify", str(source), str(tmp_path / "copy")]) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("skipped: ")]
    assert len(lines) == 2
    assert any("broken.dcm: not a readable DICOM file" in line for line in lines)
    assert any("notes.txt: not a DICOM file" in line for line in lines)
    assert len(list((tmp_path / "copy").rglob("*.dcm"))) == 2


@pytest.mark.parametrize(("dst", "key", "reason"), [
    ("src/anon", None, "is inside the source folder"),
    ("copy", "copy/key.csv", "keep it outside both the source and the copy"),
])
def test_bad_paths_one_line(source, tmp_path, capsys, dst, key, reason):
    argv = ["deidentify", str(source), str(tmp_path / dst)]
    argv += ["--key", str(tmp_path / key)] if key else []
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and reason in captured.err
    assert not (source / "anon").exists() and not (tmp_path / "copy").exists()


def test_nothing_to_copy(tmp_path, capsys):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "notes.txt").write_text("x", encoding="utf-8")
    assert main(["deidentify", str(tmp_path / "src"), str(tmp_path / "copy")]) == 1
    assert "no DICOM file could be de-identified" in capsys.readouterr().err
