"""DICOM file-sets (a PACS export with a DICOMDIR) in ``info`` and ``predict``.

The file-set is written with pydicom's ``FileSet`` from real pydicom-data files (the CR
chest, its JPEG 2000 twin, the tibia) and files made here (a second patient's study), plus a
Basic Text SR that is not an image and must be listed as skipped.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from fileset_helpers import make_fileset

from cxr_desktop.cli import main
from cxr_desktop.core.io.fileset import expand_inputs, read_dicomdir


@pytest.fixture(scope="module")
def fileset(tmp_path_factory, testdata) -> Path:
    return make_fileset(tmp_path_factory.mktemp("pacs"), testdata)


def test_read_dicomdir_lists_images_grouped_and_the_sr_as_skipped(fileset):
    entries = read_dicomdir(fileset / "DICOMDIR")
    images = [e for e in entries if not e.skipped]
    assert len(images) == 5 and all(e.path.is_file() for e in images)
    skipped = [e for e in entries if e.skipped]
    assert [(e.record_type, e.skipped) for e in skipped] == \
        [("SR DOCUMENT", "a SR DOCUMENT record, not an image")]
    groups = {e.group for e in images}
    assert len({g.split(" / ")[0] for g in groups}) == 2  # two patients
    assert all(g.startswith("patient ") and " / study " in g and " / series " in g
               for g in groups)
    assert not any("PAT-" in g or "Test^" in g for g in groups)  # no identifiers
    # a folder holding a DICOMDIR stands for the same images
    assert expand_inputs([str(fileset)]).files == [e.path for e in images]


def test_info_reports_every_referenced_image_and_the_skipped_record(fileset, capsys):
    assert main(["info", str(fileset / "DICOMDIR"), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    skipped = [line for line in lines if "skipped" in line]
    described = [line for line in lines if "skipped" not in line]
    assert len(skipped) == 1 and "not an image" in skipped[0]["skipped"]
    assert len(described) == 5 and all(line["error"] is None for line in described)
    assert {line["rows"] for line in described} >= {1955, 128}
    assert all(line["group"].startswith("patient ") for line in described)
    assert "PAT-A" not in json.dumps(lines)


def test_predict_runs_on_every_image_of_a_fileset(fileset, tmp_path, capsys):
    run = tmp_path / "model.pt"
    import torch

    from cxr_desktop.core.models import build_model

    torch.save(build_model("small_cnn", 1, pretrained="none").state_dict(), run)
    code = main(["predict", str(run), str(fileset), "--arch", "small_cnn", "--classes",
                 "normal,finding", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert len(lines) == 5 and all(line["error"] is None for line in lines)
    assert "SR DOCUMENT record, not an image; skipped" in captured.err


def test_a_broken_dicomdir_is_one_line(fileset, tmp_path, capsys):
    text = tmp_path / "text" / "DICOMDIR"
    text.parent.mkdir()
    text.write_text("not a file-set")
    cut = tmp_path / "cut" / "DICOMDIR"
    cut.parent.mkdir()
    whole = (fileset / "DICOMDIR").read_bytes()
    cut.write_bytes(whole[:len(whole) // 2])
    empty = tmp_path / "empty" / "DICOMDIR"
    empty.parent.mkdir()
    empty.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\x04\x00" + b"1.2")
    for broken in (text, cut, empty):
        assert main(["info", str(broken)]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"cxr-desktop: {broken}: not a readable DICOMDIR (")
        assert "\n" not in err


def test_inspect_says_what_a_fileset_holds(fileset, capsys):
    assert main(["inspect", str(fileset), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["format"], report["images"], report["patients"]) == ("dicomdir", 5, 2)
    assert sum(report["groups"].values()) == 5
    assert [s["reason"] for s in report["skipped"]] == ["a SR DOCUMENT record, not an image"]
    assert "predict on it" in report["notes"][0]
