"""The DICOM header rows: every element listed, patient data masked until asked."""

from __future__ import annotations

import pydicom

from cxr_desktop.core.io.header import HIDDEN, dicom_header


def test_header_lists_elements_and_masks_phi(testdata, tmp_path):
    ds = pydicom.dcmread(testdata("RG1_UNCI.dcm"))
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "MRN-0042"
    ds.OperatorsName = "Smith^Ann"
    path = tmp_path / "phi.dcm"
    ds.save_as(path)
    rows = {row.keyword: row for row in dicom_header(path)}
    assert rows["BodyPartExamined"].value == "CHEST" and rows["Rows"].value == "1955"
    assert rows["TransferSyntaxUID"].tag == "(0002,0010)"
    for keyword in ("PatientName", "PatientID", "OperatorsName"):
        assert rows[keyword].phi and rows[keyword].value == HIDDEN
    text = " ".join(row.value for row in dicom_header(path))
    assert "Doe" not in text and "MRN-0042" not in text and "Smith" not in text
    shown = {row.keyword: row for row in dicom_header(path, show_phi=True)}
    assert shown["PatientName"].value == "Doe^Jane" and shown["PatientID"].value == "MRN-0042"


def test_sequences_are_nested(testdata):
    rows = dicom_header(testdata("vlut_04.dcm"))
    sequence = next(i for i, r in enumerate(rows) if r.keyword == "VOILUTSequence")
    assert rows[sequence].value == "1 item(s)"
    assert rows[sequence + 1].depth == 1


def test_a_value_pydicom_cannot_convert_is_listed_as_bytes(testdata, tmp_path):
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    ds = pydicom.dcmread(testdata("RG1_UNCI.dcm"))
    tag = Tag("Rows")
    ds[tag] = RawDataElement(tag, "US", 3, b"\x01\x02\x03", 0, False, True)  # odd length
    tag = Tag("WindowCenter")
    ds[tag] = RawDataElement(tag, "DS", 4, b"abc ", 0, False, True)
    path = tmp_path / "odd.dcm"
    ds.save_as(path)
    rows = {row.keyword: row for row in dicom_header(path)}
    assert (rows["Rows"].vr, rows["Rows"].value) == ("US", "<unreadable: 3 bytes>")
    assert rows["WindowCenter"].value == "abc" and rows["BodyPartExamined"].value == "CHEST"
