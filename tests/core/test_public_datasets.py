"""The public chest X-ray datasets as they are published import with no mapping flag.

Label rows are real (tests/fixtures/public_labels); the layouts (nested DICOMs, ids without
extensions, extra CSVs beside the label table) are those the datasets ship in. Each test
reads the dataset as ``cxr-desktop inspect DATASET --json`` does, with no flag.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from public_layouts import (
    LABELS,
    chest_pixels,
    make_covid,
    make_covid_small,
    make_nih,
    make_rsna,
    make_siim,
    make_vindr,
    write_dicom,
)

from cxr_desktop.cli import main
from cxr_desktop.core.data import check_dataset, open_dataset
from cxr_desktop.core.data.importers.geometry import rle_decode, rle_shapes


def inspect_json(capsys, *args: str) -> dict:
    assert main(["inspect", *map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def positives(report: dict) -> dict[str, int]:
    out: dict[str, int] = {}
    for entry in report["splits"].values():
        for name, count in entry["per_class"].items():
            out[name] = out.get(name, 0) + count
    return out


def listing(root: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(root)), p.stat().st_mtime_ns) for p in root.rglob("*"))


@pytest.fixture(scope="module")
def siim(tmp_path_factory) -> Path:
    return make_siim(tmp_path_factory.mktemp("siim"))


@pytest.fixture(scope="module")
def rsna(tmp_path_factory) -> Path:
    return make_rsna(tmp_path_factory.mktemp("rsna"))


def test_siim_nested_jpeg_dicoms_with_run_length_masks(siim, capsys):
    before = listing(siim)
    report = inspect_json(capsys, siim)
    assert (report["format"], report["preset"], report["task"]) == ("csv", "siim", "binary")
    assert report["classes"] == ["no_pneumothorax", "pneumothorax"]
    assert report["images"] == 12
    assert positives(report) == {"no_pneumothorax": 7, "pneumothorax": 5}
    # 3 + 2 + 1 + 1 + 1 masks, some of them in several pieces: one polygon per piece
    assert report["annotations"]["images"] == 5
    assert report["annotations"]["shapes"] >= 8
    assert report["stats"]["formats"] == {"DICOM": 12}
    assert set(report["problem_counts"]) <= {"imbalance"}, report["problems"]
    assert any("SIIM-ACR pneumothorax preset" in n for n in report["notes"])
    assert any("DICOM headers (PatientID)" in n for n in report["notes"])
    assert listing(siim) == before  # nothing written inside the dataset folder


def test_siim_masks_match_the_run_length_code_at_the_image_size(siim):
    spec = open_dataset(siim)
    image_id = "1.2.276.0.7230010.3.1.4.8323329.3514.1517875178.176496"
    item = next(it for it in spec.items if image_id in it.path)
    assert item.path.startswith("dicom-images-train/") and item.path.endswith(".dcm")
    cells = [line.split(",", 1)[1] for line in
             (LABELS / "siim_train-rle.csv").read_text().splitlines() if image_id in line]
    assert len(cells) == 3 and len(item.shapes) >= 3
    truth = np.zeros((1024, 1024), dtype=bool)
    for cell in cells:
        truth |= rle_decode(cell, 1024, 1024).astype(bool)
    import cv2

    drawn = np.zeros((1024, 1024), dtype=np.uint8)
    cv2.fillPoly(drawn, [np.array(s.points, dtype=np.int32) for s in item.shapes], 1)
    iou = (drawn.astype(bool) & truth).sum() / (drawn.astype(bool) | truth).sum()
    assert iou > 0.85
    assert item.meta["shape_lines"][0].startswith("train-rle.csv line ")
    # patients come hashed from the headers: the PatientID itself is never stored
    assert item.patient.startswith("dicom:")
    assert "-" + image_id[-6:] not in json.dumps(spec.to_dict())


def test_run_length_codes_relative_and_absolute_decode_alike():
    # a 3-wide vertical bar at x = 2, rows 1-4, in a 6 x 8 image (column-major: x major)
    starts = [2 * 8 + 1, 3 * 8 + 1, 4 * 8 + 1]
    absolute = " ".join(f"{s} 4" for s in starts)
    relative = f"{starts[0]} 4 4 4 4 4"
    for text in (absolute, relative):
        mask = rle_decode(text, 6, 8)
        assert mask.shape == (8, 6)
        assert mask.sum() == 12 and mask[1:5, 2:5].all()
    shape = rle_shapes(relative, 6, 8, "pneumothorax")[0]
    assert shape.bounds() == (2.0, 1.0, 4.0, 4.0)
    for bad, reason in (("1 2 3", "pairs"), ("5 -3", "negative"), ("40 20", "past the end"),
                        ("a b", "numbers")):
        with pytest.raises(ValueError, match=reason):
            rle_decode(bad, 6, 8)


def test_rsna_ids_without_extension_boxes_and_patients(rsna, capsys):
    report = inspect_json(capsys, rsna, "--no-checks")
    assert (report["preset"], report["task"], report["images"]) == ("rsna", "binary", 12)
    assert report["classes"] == ["no_opacity", "opacity"]
    assert positives(report) == {"no_opacity": 7, "opacity": 5}
    assert report["annotations"] == {"images": 5, "shapes": 9}
    spec = open_dataset(rsna)
    item = next(it for it in spec.items if it.path.startswith("stage_2_train_images/03a9498c"))
    assert item.patient == "03a9498c-549d-4e7d-800b-e74797f7f625"
    assert [s.bounds() for s in item.shapes] == [
        (195.0, 511.0, 413.0, 782.0), (612.0, 214.0, 721.0, 303.0),
        (610.0, 599.0, 875.0, 844.0)]
    assert {s.label for s in item.shapes} == {"opacity"}
    checked = check_dataset(spec)
    assert [p.kind for p in checked.problems if p.kind != "imbalance"] == []


def test_bad_rows_are_reported_with_their_line_and_the_rest_imported(rsna, tmp_path):
    root = tmp_path / "rsna"
    root.mkdir()
    (root / "stage_2_train_images").symlink_to(rsna / "stage_2_train_images")
    lines = (LABELS / "rsna_stage_2_train_labels.csv").read_text().splitlines()
    lines += ["not-a-patient,,,,,0",
              "0100515c-5204-4f31-98e0-f35e4b00004a,abc,416.0,84.0,77.0,1",
              "01adfd2f-7bc7-4cef-ab68-a0992752b620,225.0,415.0,-98.0,101.0,1",
              "0004cfab-14fd-4e49-80ba-63a80b6bddd6,900.0,900.0,300.0,300.0,1"]
    (root / "stage_2_train_labels.csv").write_text("\n".join(lines) + "\n")
    spec = open_dataset(root)
    found = {(p.kind, p.detail.split(":")[0]) for p in spec.problems}
    assert ("missing", "stage_2_train_labels.csv line 18") in found
    assert ("bad_annotation", "stage_2_train_labels.csv line 19") in found
    assert ("bad_annotation", "stage_2_train_labels.csv line 20") in found
    assert len(spec.items) == 12
    outside = [p for p in check_dataset(spec).problems if p.kind == "annotation_outside"]
    assert len(outside) == 1
    assert outside[0].detail.startswith("stage_2_train_labels.csv line 21: rectangle")
    assert "1024 x 1024" in outside[0].detail


def test_vindr_readers_merged_by_any_or_majority(tmp_path, capsys):
    root = make_vindr(tmp_path)
    report = inspect_json(capsys, root, "--no-checks")
    assert (report["preset"], report["task"], report["images"]) == ("vindr", "multilabel", 6)
    spec = open_dataset(root)
    empty = [it for it in spec.items if not it.labels]
    assert len(empty) == 3 and all(not it.shapes for it in empty)
    image = next(it for it in spec.items if "9a5094b2563a1ef3ff50dc5c7ff71345" in it.path)
    assert image.path == "train/9a5094b2563a1ef3ff50dc5c7ff71345.dicom"
    assert set(image.labels) == {"Aortic enlargement", "Cardiomegaly", "Pleural effusion",
                                 "Pleural thickening"}
    assert len(image.shapes) == 6
    note = next(n for n in spec.notes if "several readers" in n)
    assert "6 images were read by several readers; they disagree on 3" in note
    majority = open_dataset(root, mapping={"readers": "majority"})
    image = next(it for it in majority.items if "9a5094b2563a1ef3ff50dc5c7ff71345" in it.path)
    assert set(image.labels) == {"Cardiomegaly"}  # marked by R8, R9 and R10
    assert {s.label for s in image.shapes} == {"Cardiomegaly"} and len(image.shapes) == 3


def test_nih_with_and_without_its_box_file(tmp_path, capsys):
    with_boxes = make_nih(tmp_path / "with")
    report = inspect_json(capsys, with_boxes, "--no-checks")
    assert (report["format"], report["task"], report["images"]) == ("nih", "multilabel", 17)
    assert report["annotations"] == {"images": 5, "shapes": 7}
    spec = open_dataset(with_boxes)
    item = next(it for it in spec.items if it.path == "images/00010575_002.png")
    assert {s.label for s in item.shapes} == {"Atelectasis", "Effusion"}
    alone = inspect_json(capsys, with_boxes / "BBox_List_2017.csv", "--no-checks")
    assert (alone["preset"], alone["task"], alone["images"]) == ("nih-boxes", "multilabel", 5)
    assert alone["annotations"] == {"images": 5, "shapes": 7}
    (with_boxes / "BBox_List_2017.csv").unlink()
    report = inspect_json(capsys, with_boxes, "--no-checks")
    assert report["annotations"] == {"images": 0, "shapes": 0}


def test_covid_collection_x_ray_frontal_covid_against_the_rest(tmp_path, capsys):
    root = make_covid(tmp_path)
    report = inspect_json(capsys, root, "--no-checks")
    assert (report["preset"], report["task"]) == ("covid", "binary")
    assert report["classes"] == ["no_COVID-19", "COVID-19"]
    # 14 rows: 2 CT and 1 lateral filtered, 1 'todo' finding unknown
    assert report["images"] == 10
    assert positives(report) == {"no_COVID-19": 6, "COVID-19": 4}
    assert [p["kind"] for p in report["problems"]] == ["unlabelled"]
    text = (root / "metadata.csv").read_text()
    line = text[:text.index("todo-case-11")].count("\n") + 1
    assert report["problems"][0]["detail"].startswith(f"metadata.csv line {line}: ")
    assert line == 13  # not 11: a note before it runs over three lines
    notes = "\n".join(report["notes"])
    assert "left out 2 of 14 rows (modality CT 2)" in notes and "view L 1" in notes
    spec = open_dataset(root)
    assert {it.patient for it in spec.items if "auntminnie" in it.path} == {"2"}
    pa = inspect_json(capsys, root, "--no-checks", "--view", "PA")
    assert pa["images"] == 7


def test_covid_volumes_are_not_radiographs_not_missing(tmp_path):
    root = make_covid(tmp_path)
    every_view = "PA,AP,AP Supine,AP erect,L,Axial,Coronal"
    spec = open_dataset(root, mapping={"filters": ["modality != US"]}, view=every_view)
    volume = [p for p in spec.problems if p.kind == "not_radiograph"]
    assert len(volume) == 1 and volume[0].paths == ["volumes/coronacases_org_001.nii.gz"]
    assert "a volume (CT or MR), not a 2-D radiograph" in volume[0].detail
    assert not [p for p in spec.problems if p.kind == "missing"]


def test_small_covid_sets_name_images_by_id_without_extension(tmp_path, capsys):
    root = make_covid_small(tmp_path)
    report = inspect_json(capsys, root, "--no-checks")
    assert (report["preset"], report["images"]) == ("covid", 7)
    assert positives(report) == {"no_COVID-19": 2, "COVID-19": 5}
    assert [(p["kind"], p["detail"]) for p in report["problems"]] == [
        ("unlabelled", "metadata.csv line 6: no label; left out")]
    spec = open_dataset(root)
    assert sorted(Path(it.path).suffix for it in spec.items).count(".png") >= 2


def test_positive_if_on_any_table_and_blank_labels_are_never_negatives(tmp_path, capsys):
    table = tmp_path / "labels.csv"
    table.write_text("image,finding,score\nA,COVID-19 pneumonia,3\nB,normal,0\nC,,1\n"
                     "D,Pneumonia/Viral/covid-19,2\nE,bacterial,0\n")
    for seed, name in enumerate("ABCDE"):
        write_dicom(tmp_path / "imgs" / f"{name}.dcm", chest_pixels(seed, 64))
    report = inspect_json(capsys, table, "--no-checks", "--positive-if",
                          'finding contains "COVID-19"')
    assert report["classes"] == ["no_COVID-19", "COVID-19"] and report["images"] == 4
    assert positives(report) == {"no_COVID-19": 2, "COVID-19": 2}
    assert [p["kind"] for p in report["problems"]] == ["unlabelled"]
    numeric = inspect_json(capsys, table, "--no-checks", "--positive-if", "score >= 2",
                           "--positive", "severe")
    assert numeric["classes"] == ["no_severe", "severe"]
    assert positives(numeric) == {"no_severe": 3, "severe": 2}


def test_ambiguous_stems_are_reported_never_picked(tmp_path):
    for seed, name in enumerate(("a.png", "a.jpg", "b.png", "sub/C.PNG", "d.png")):
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        from PIL import Image

        Image.fromarray(chest_pixels(seed, 64)).save(path)
    (tmp_path / "labels.csv").write_text("file,label\na,sick\nb,normal\nc.png,sick\n"
                                         "d,normal\n")
    spec = open_dataset(tmp_path / "labels.csv")
    assert sorted(it.path for it in spec.items) == ["b.png", "d.png", "sub/C.PNG"]
    ambiguous = [p for p in spec.problems if p.kind == "ambiguous"]
    assert len(ambiguous) == 1 and ambiguous[0].paths == ["a.jpg", "a.png"]
    assert ambiguous[0].detail.startswith("labels.csv line 2: 'a' fits 2 files")


def test_dicoms_found_by_sop_instance_uid_when_names_differ(siim, tmp_path, capsys):
    root = tmp_path / "renamed"
    for number, path in enumerate(sorted((siim / "dicom-images-train").rglob("*.dcm"))):
        target = root / "images" / f"image_{number:03d}.dcm"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(path, target)
    (root / "train-rle.csv").write_text((siim / "train-rle.csv").read_text())
    report = inspect_json(capsys, root, "--no-checks")
    assert report["images"] == 12 and report["problem_counts"] == {}
    assert report["annotations"]["images"] == 5


def test_dataset_annotations_export_as_labelme_outside_the_dataset(rsna, tmp_path, capsys):
    from cxr_desktop.core.annotations.labelme import load_labelme

    out = tmp_path / "labelme"
    assert main(["inspect", str(rsna), "--no-checks", "--export-labelme", str(out)]) == 0
    assert "5 labelme files written" in capsys.readouterr().err
    files = sorted(out.glob("*.json"))
    assert len(files) == 5
    shapes, reference, size = load_labelme(next(f for f in files if "03a9498c" in f.name))
    assert size == (1024, 1024) and reference.endswith("03a9498c-549d-4e7d-800b-e74797f7f625.dcm")
    assert sorted(s.bounds() for s in shapes)[0] == (195.0, 511.0, 413.0, 782.0)
    before = listing(rsna)
    assert main(["inspect", str(rsna), "--no-checks", "--export-labelme",
                 str(rsna / "labels")]) == 1
    assert "inside the dataset folder" in capsys.readouterr().err
    assert listing(rsna) == before


def test_a_preset_that_does_not_fit_the_table_is_one_line(siim, capsys):
    for preset in ("rsna", "vindr", "nih-boxes", "covid", "nope"):
        assert main(["inspect", str(siim), "--no-checks", "--preset", preset]) == 1
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "Traceback" not in err
        assert ("does not fit this table" in err) if preset != "nope" else \
            "unknown preset 'nope'" in err


def test_layouts_the_presets_were_not_written_on(tmp_path, capsys):
    """The Kaggle NIH sample (sample_labels.csv), SIIM's PNG copy with absolute run-length
    codes (stage 2) and a table of findings joined by '|' under another name."""
    from PIL import Image

    from cxr_desktop.core.data.importers.geometry import _runs

    nih = tmp_path / "nih" / "sample"
    (nih / "images").mkdir(parents=True)
    lines = (LABELS / "nih_Data_Entry_2017.csv").read_text().splitlines()
    (nih / "sample_labels.csv").write_text("\n".join(lines) + "\n")
    for seed, line in enumerate(lines[1:]):
        Image.fromarray(chest_pixels(seed, 64)).save(nih / "images" / line.split(",")[0])
    report = inspect_json(capsys, tmp_path / "nih", "--no-checks")
    assert (report["format"], report["task"], report["images"]) == ("nih", "multilabel", 17)
    assert "Effusion" in report["classes"] and not any("|" in c for c in report["classes"])

    siim = tmp_path / "siim"
    (siim / "png_images").mkdir(parents=True)
    rows = ["ImageId,EncodedPixels"]
    for seed, line in enumerate((LABELS / "siim_train-rle.csv").read_text().splitlines()[1:]):
        image_id, code = (part.strip() for part in line.split(",", 1))
        if code != "-1":  # the same mask written with absolute starts
            starts, ends = _runs(code, 1024, 1024)
            code = " ".join(f"{a} {b - a}" for a, b in zip(starts, ends, strict=True))
        rows.append(f"{image_id},{code}")
        png = siim / "png_images" / f"{image_id}.png"
        if not png.exists():
            Image.fromarray(chest_pixels(seed)).save(png, compress_level=1)
    (siim / "stage_2_train.csv").write_text("\n".join(rows) + "\n")
    report = inspect_json(capsys, siim, "--no-checks")
    assert (report["preset"], report["images"]) == ("siim", 12)
    original = open_dataset(make_siim(tmp_path / "dicoms"))
    copy = open_dataset(siim)
    by_id = {Path(it.path).stem: it.shapes for it in copy.items}
    assert {Path(it.path).stem: it.shapes for it in original.items} == by_id

    pipe = tmp_path / "pipe"
    (pipe / "img").mkdir(parents=True)
    findings = ["Effusion|Mass", "No Finding", "Mass", "Effusion", "Nodule|Mass", "No Finding"]
    for seed in range(len(findings)):
        Image.fromarray(chest_pixels(seed, 64)).save(pipe / "img" / f"{seed}.png")
    (pipe / "labels.csv").write_text("file,findings\n" + "".join(
        f"img/{seed}.png,{cell}\n" for seed, cell in enumerate(findings)))
    report = inspect_json(capsys, pipe, "--no-checks")
    assert (report["task"], report["classes"]) == ("multilabel", ["Effusion", "Mass", "Nodule"])
    assert any("joined by '|'" in note for note in report["notes"])
