"""Each importer on small files shaped like the real datasets, and format detection."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from dataset_helpers import write_image, write_text

from cxr_desktop.core.data import ColumnMapping, detect_format, open_dataset, reopen
from cxr_desktop.core.data.importers.tables import read_header, read_table
from cxr_desktop.core.errors import DatasetError


def _kaggle(root):
    names = {"NORMAL": ["IM-0001-0001.jpeg", "NORMAL2-IM-0002-0001.jpeg"],
             "PNEUMONIA": ["person1_bacteria_1.jpeg", "person1_virus_2.jpeg",
                           "person2_bacteria_3.jpeg", "person3_virus_4.jpeg"]}
    seed = 0
    for split in ("train", "val", "test"):
        for cls, files in names.items():
            for name in files:
                seed += 1
                write_image(root / "chest_xray" / split / cls / name, seed)
    return root


def test_folders_with_splits_and_wrapper_folder(tmp_path):
    spec = open_dataset(_kaggle(tmp_path))
    assert spec.source["format"] == "folders"
    assert spec.root == (tmp_path / "chest_xray").resolve()
    assert spec.task == "binary"
    assert spec.classes == ["NORMAL", "PNEUMONIA"] and spec.positive_class == "PNEUMONIA"
    summary = spec.summary()["splits"]
    assert {s: summary[s]["images"] for s in summary} == {"train": 6, "val": 6, "test": 6}
    assert summary["val"]["per_class"] == {"NORMAL": 2, "PNEUMONIA": 4}
    assert "val/PNEUMONIA/person1_virus_2.jpeg" in {it.path for it in spec.items}


def test_folders_classes_and_patients_from_file_names(tmp_path):
    spec = open_dataset(_kaggle(tmp_path), class_from_name="bacteria,virus",
                        patient_regex=r"^(person\d+)_")
    assert spec.task == "multiclass"
    assert spec.classes == ["bacteria", "NORMAL", "virus"]
    assert spec.summary()["splits"]["train"]["per_class"] == {"bacteria": 2, "NORMAL": 2,
                                                              "virus": 2}
    by_path = {it.path: it for it in spec.items}
    assert by_path["train/PNEUMONIA/person1_virus_2.jpeg"].patient == "person1"
    assert by_path["train/NORMAL/IM-0001-0001.jpeg"].patient is None


def test_folders_without_splits_get_stratified_splits(tmp_path):
    for i in range(20):
        write_image(tmp_path / "chest" / f"c{i}.png", i)
        write_image(tmp_path / "abdomen" / "sub" / f"a{i}.dcm.png", 100 + i)
    (tmp_path / "chest" / "notes.txt").write_text("not an image")
    spec = open_dataset(tmp_path, seed=1)
    assert spec.classes == ["abdomen", "chest"] and len(spec.items) == 40
    summary = spec.summary()["splits"]
    assert summary["test"]["per_class"] == {"abdomen": 2, "chest": 2}
    assert summary["val"]["per_class"] == {"abdomen": 2, "chest": 2}
    assert open_dataset(tmp_path, seed=1) == spec  # same seed, same splits
    assert [it.split for it in open_dataset(tmp_path, seed=2).items] != \
        [it.split for it in spec.items]


OBJECT_ROWS = {
    "train": [("00001.jpg", ""), ("00002.jpg", "0 10 10 40 30;1 50 50 60 70"),
              ("00003.jpg", "2 1 1 20 1 20 20")],
    "dev": [("00004.jpg", ""), ("00005.jpg", "0 5 5 9 9")],
    "test": [("00006.jpg", "1 3 3 8 8"), ("00007.jpg", "")],
}


@pytest.mark.parametrize("column", ["image_name", "image_path"])
def test_objectcxr_layout(tmp_path, column):
    seed = 0
    for split, rows in OBJECT_ROWS.items():
        lines = [f"{column},annotation"]
        for name, annotation in rows:
            seed += 1
            write_image(tmp_path / split / name, seed)
            shown = name if column == "image_name" else f"{split}/{name}"
            lines.append(f'{shown},"{annotation}"')
        write_text(tmp_path / f"{split}.csv", "\n".join(lines) + "\n")
    assert detect_format(tmp_path) == "objectcxr"
    spec = open_dataset(tmp_path)
    assert (spec.task, spec.classes, spec.positive_class) == \
        ("binary", ["no_object", "object"], "object")
    by_path = {it.path: it for it in spec.items}
    assert {it.split for it in spec.items} == {"train", "val", "test"}
    assert by_path["dev/00005.jpg"].split == "val"
    item = by_path["train/00002.jpg"]
    assert item.labels == "object"
    assert [s.shape_type for s in item.shapes] == ["rectangle", "ellipse"]
    assert item.shapes[0].points == ((10.0, 10.0), (40.0, 30.0))
    assert by_path["train/00003.jpg"].shapes[0].shape_type == "polygon"
    assert by_path["train/00001.jpg"].labels == "no_object"
    assert spec.targets().tolist() == [0, 1, 1, 0, 1, 1, 0]


NIH_CSV = """Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,\
View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],
00000001_000.png,Cardiomegaly,0,1,58,M,PA,2682,2749,0.143,0.143,
00000001_001.png,Cardiomegaly|Emphysema,1,1,58,M,PA,2894,2729,0.143,0.143,
00000002_000.png,No Finding,0,2,81,M,AP,2500,2048,0.168,0.168,
00000003_000.png,Hernia,0,3,81,F,PA,2582,2991,0.143,0.143,
00000004_000.png,Effusion|Hernia,0,4,82,F,PA,2582,2991,0.143,0.143,
00000005_000.png,No Finding,0,5,12,F,PA,2048,2500,0.168,0.168,
"""


def _nih(root):
    write_text(root / "Data_Entry_2017.csv", NIH_CSV)
    for i, name in enumerate(["00000001_000", "00000001_001", "00000002_000"]):
        write_image(root / "images_001" / "images" / f"{name}.png", i)
    for i, name in enumerate(["00000003_000", "00000004_000"]):
        write_image(root / "images_002" / "images" / f"{name}.png", 10 + i)
    return root


def test_nih_finds_images_by_name_and_reports_the_missing(tmp_path):
    spec = open_dataset(_nih(tmp_path))
    assert spec.source["format"] == "nih" and spec.task == "multilabel"
    assert spec.classes == ["Cardiomegaly", "Effusion", "Emphysema", "Hernia"]
    by_path = {it.path: it for it in spec.items}
    item = by_path["images_001/images/00000001_001.png"]
    assert item.labels == {"Cardiomegaly": 1.0, "Emphysema": 1.0}
    assert item.patient == "1" and item.meta == {"view": "PA"}
    assert by_path["images_001/images/00000002_000.png"].labels == {}
    assert len(spec.items) == 5
    assert [(p.kind, p.paths) for p in spec.problems] == [("missing", ["00000005_000.png"])]
    targets = spec.targets()
    assert targets.shape == (5, 4) and not np.isnan(targets).any()
    assert targets[[it.path for it in spec.items].index(item.path)].tolist() == [1, 0, 1, 0]
    splits = {}
    for it in spec.items:
        splits.setdefault(it.patient, set()).add(it.split)
    assert all(len(s) == 1 for s in splits.values())


def test_nih_view_filter_and_official_test_list(tmp_path):
    _nih(tmp_path)
    write_text(tmp_path / "test_list.txt", "00000003_000.png\n")
    write_text(tmp_path / "train_val_list.txt",
               "00000001_000.png\n00000001_001.png\n00000004_000.png\n")
    spec = open_dataset(tmp_path / "Data_Entry_2017.csv", view="PA")
    assert spec.filters == ["View Position in PA"]
    assert all(it.meta["view"] == "PA" for it in spec.items)
    by_path = {it.path.rsplit("/", 1)[-1]: it.split for it in spec.items}
    assert by_path["00000003_000.png"] == "test"
    assert {by_path["00000001_000.png"], by_path["00000004_000.png"]} <= {"train", "val"}
    assert spec.source["splits"]["given"] == ["train", "test"]


CHEXPERT = """Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Cardiomegaly,Edema,Pleural Effusion
CheXpert-v1.0-small/{split}/patient00001/study1/view1_frontal.jpg,Female,68,Frontal,AP,,1.0,-1.0,
CheXpert-v1.0-small/{split}/patient00001/study1/view2_lateral.jpg,Female,68,Lateral,,,1.0,0.0,
CheXpert-v1.0-small/{split}/patient00002/study1/view1_frontal.jpg,Male,87,Frontal,PA,1.0,,,0.0
"""


def _chexpert(tmp_path):
    root = tmp_path / "CheXpert-v1.0-small"
    seed = 0
    for split, csv in (("train", "train.csv"), ("valid", "valid.csv")):
        text = CHEXPERT.format(split=split)
        write_text(root / csv, text)
        for line in text.splitlines()[1:]:
            seed += 1
            write_image(tmp_path / line.split(",")[0], seed, quality=90)
    return root


@pytest.mark.parametrize(("uncertain", "blank", "row0"), [
    ("mask", "negative", [0, 1, np.nan, 0]),
    ("positive", "mask", [np.nan, 1, 1, np.nan]),
    ("negative", "negative", [0, 1, 0, 0]),
])
def test_chexpert_policies_paths_and_patients(tmp_path, uncertain, blank, row0):
    root = _chexpert(tmp_path)
    assert detect_format(tmp_path) == "chexpert"  # the wrapper folder is looked into
    spec = open_dataset(tmp_path, uncertain=uncertain, blank=blank, test_fraction=0)
    assert spec.classes == ["No Finding", "Cardiomegaly", "Edema", "Pleural Effusion"]
    assert spec.root == root.resolve()
    first = spec.items[0]
    assert first.path == "train/patient00001/study1/view1_frontal.jpg"
    assert first.patient == "patient00001" and first.split == "train"
    assert first.labels == {"Cardiomegaly": 1.0, "Edema": -1.0}
    np.testing.assert_array_equal(spec.targets()[0], np.array(row0, dtype=np.float32))
    assert {it.split for it in spec.items if it.path.startswith("valid/")} == {"val"}
    assert not spec.problems


def test_chexpert_view_filter(tmp_path):
    spec = open_dataset(_chexpert(tmp_path) / "train.csv", view="PA")
    assert [it.path for it in spec.items] == ["train/patient00002/study1/view1_frontal.jpg"]


COVID = """patientid,offset,sex,age,finding,survival,view,modality,date,location,folder,filename
1,0,M,65,Pneumonia/Viral/COVID-19,Y,PA,X-ray,2020,China,images,a.jpg
1,3,M,65,Pneumonia/Viral/COVID-19,Y,PA,X-ray,2020,China,images,b.jpg
2,,F,50,No Finding,,PA,X-ray,2020,Italy,images,c.jpg
3,,F,52,Pneumonia/Bacterial,,AP,X-ray,2020,Italy,images,d.jpg
4,,M,40,Pneumonia/Viral/COVID-19,,PA,CT,2020,Spain,volumes,e.nii.gz
5,,M,44,No Finding,,PA,X-ray,2020,Spain,images,../../outside.jpg
6,,M,47,Pneumonia/Bacterial,,PA,X-ray,2020,Spain,images,f.jpg
"""


def test_generic_csv_guesses_the_covid_metadata_mapping(tmp_path):
    write_text(tmp_path / "metadata.csv", COVID)
    for i, name in enumerate("abcdf"):
        write_image(tmp_path / "images" / f"{name}.jpg", i)
    assert detect_format(tmp_path) == "csv"
    mapping = {"filters": ['view == "PA"', "modality == X-ray"]}
    spec = open_dataset(tmp_path, mapping=mapping)
    assert spec.task == "binary"
    assert spec.classes == ["no_COVID-19", "COVID-19"]
    assert [it.labels for it in spec.items] == ["COVID-19", "COVID-19", "no_COVID-19",
                                                "no_COVID-19"]
    assert [it.path for it in spec.items] == ["images/a.jpg", "images/b.jpg", "images/c.jpg",
                                              "images/f.jpg"]
    assert [it.patient for it in spec.items] == ["1", "1", "2", "6"]
    assert [(p.kind, p.paths) for p in spec.problems] == \
        [("outside_root", ["images/../../outside.jpg"])]
    assert spec.source["mapping"]["image"] == "filename"
    assert spec.source["mapping"]["positive_if"] == 'finding contains "COVID-19"'
    assert reopen(spec) == spec


def test_generic_csv_binarize_nonzero_and_multilabel_columns(tmp_path):
    write_text(tmp_path / "labels.csv",
               "file,opacity,effusion,site\nx.png,3,0,A\ny.png,0,,B\nz.png,1,-1,A\n"
               "/etc/passwd,1,1,A\n")
    for i, name in enumerate("xyz"):
        write_image(tmp_path / f"{name}.png", i)
    single = open_dataset(tmp_path / "labels.csv",
                          mapping=ColumnMapping(image="file", labels=["opacity"],
                                                binarize="nonzero"))
    assert (single.task, single.classes, single.positive_class) == \
        ("binary", ["no_opacity", "opacity"], "opacity")
    assert single.targets().tolist() == [1, 0, 1]
    assert [p.kind for p in single.problems] == ["outside_root"]
    multi = open_dataset(tmp_path / "labels.csv",
                         mapping={"image": "file", "labels": ["opacity", "effusion"],
                                  "binarize": "nonzero", "filters": ["site != B"]})
    assert multi.task == "multilabel" and multi.classes == ["opacity", "effusion"]
    assert [it.labels for it in multi.items] == [{"opacity": 1.0, "effusion": 0.0},
                                                  {"opacity": 1.0, "effusion": 1.0}]
    with pytest.raises(DatasetError, match="labels.csv: line 2: opacity = '3' is not 1, 0"):
        open_dataset(tmp_path / "labels.csv",
                     mapping={"image": "file", "labels": ["opacity", "effusion"]})


def test_unreadable_datasets_raise_dataset_errors(tmp_path):
    with pytest.raises(DatasetError, match="nothing-here: not found"):
        open_dataset(tmp_path / "nothing-here")
    write_text(tmp_path / "table.csv", "a,b\n1,2\n")
    with pytest.raises(DatasetError, match="table.csv: cannot tell which column holds the image"):
        open_dataset(tmp_path / "table.csv")
    with pytest.raises(DatasetError, match="option 'uncertain' does not apply to a csv dataset"):
        open_dataset(tmp_path / "table.csv", uncertain="mask")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no images in class folders"):
        open_dataset(empty)


def test_a_20000_row_nih_csv_indexes_every_row(tmp_path):
    """Correctness at scale; the speed target (100 000 rows < 10 s) is in bench/index.py."""
    images = tmp_path / "images"
    images.mkdir()
    rows = ["Image Index,Finding Labels,Patient ID,View Position"]
    findings = ["No Finding", "Effusion", "Atelectasis|Mass", "Nodule"]
    for i in range(20_000):
        name = f"{i:08d}_000.png"
        (images / name).touch()
        rows.append(f"{name},{findings[i % 4]},{i // 3},{'PA' if i % 2 else 'AP'}")
    write_text(tmp_path / "Data_Entry_2017.csv", "\n".join(rows) + "\n")
    spec = open_dataset(tmp_path)
    assert len(spec.items) == 20_000 and not spec.problems
    assert {item.patient for item in spec.items[:6]} == {"0", "1"}


def test_read_header_parses_the_header_as_read_table_does(tmp_path):
    tsv = write_text(tmp_path / "labels.tsv", "image\tlabel\na.png\tNORMAL\n")
    quoted = write_text(tmp_path / "quoted.csv", '"img, path",label\n"a, b.png",NORMAL\n')
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufeffImage Index,Finding Labels\na.png,No Finding\n".encode())
    for path, header in ((tsv, ["image", "label"]), (quoted, ["img, path", "label"]),
                         (bom, ["Image Index", "Finding Labels"])):
        assert read_header(path) == header == list(read_table(path).columns)
    nih = write_text(tmp_path / "nih.tsv", "Image Index\tFinding Labels\na.png\tNo Finding\n")
    assert detect_format(nih) == "nih" and detect_format(bom) == "nih"


def test_read_header_errors_are_one_line_naming_the_file(tmp_path):
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00\x01 \xc3(\n")
    with pytest.raises(DatasetError, match=r"^[^\n]*binary\.csv: not a readable CSV table: "
                                           r"'utf-8' codec can't decode[^\n]*$"):
        read_header(binary)
    with pytest.raises(DatasetError, match=r"empty\.csv: the file is empty$"):
        read_header(write_text(tmp_path / "empty.csv", ""))
    with pytest.raises(DatasetError, match=r"gone\.csv: file not found$"):
        read_header(tmp_path / "gone.csv")
    image = write_image(tmp_path / "chest.png")
    with pytest.raises(DatasetError, match=r"chest\.png: not a dataset: give a folder"):
        detect_format(image)


@pytest.fixture(params=["chmod", "patched"])
def lock(request, monkeypatch):
    """``lock(folder)`` makes a folder impossible to list: by permissions (not as root,
    whom they do not stop), or by ``os.scandir`` raising PermissionError for it."""
    locked: list[Path] = []
    if request.param == "chmod":
        if os.name != "posix" or os.geteuid() == 0:
            pytest.skip("permissions do not stop root (nor apply on Windows)")
        yield lambda folder: (locked.append(folder), folder.chmod(0))
        for folder in locked:
            folder.chmod(0o755)
        return
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path) in locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    yield locked.append


def test_an_unreadable_class_folder_is_a_problem_not_a_vanished_class(tmp_path, lock):
    for i, cls in enumerate(("NORMAL", "PNEUMONIA", "COVID")):
        write_image(tmp_path / cls / f"{i}.png", i)
        write_image(tmp_path / cls / "patient" / f"{i}.png", 10 + i)
    write_image(tmp_path / "NORMAL" / "more" / "9.png", 9)
    lock(tmp_path / "COVID")
    lock(tmp_path / "NORMAL" / "patient")
    spec = open_dataset(tmp_path)
    assert spec.classes == ["NORMAL", "PNEUMONIA"]
    assert sorted(it.path for it in spec.items) == [
        "NORMAL/0.png", "NORMAL/more/9.png", "PNEUMONIA/1.png", "PNEUMONIA/patient/1.png"]
    unreadable = [p for p in spec.problems if p.kind == "unreadable_folder"]
    assert [p.paths for p in unreadable] == [["COVID"], ["NORMAL/patient"]]
    assert all(p.detail == "cannot list the folder (Permission denied), so its images are "
                           "left out" for p in unreadable)


def test_an_unreadable_image_folder_under_a_csv_is_a_problem(tmp_path, lock):
    write_text(tmp_path / "labels.csv",
               "image,label\nimages/a.png,NORMAL\nimages/b.png,PNEUMONIA\nlocked/c.png,NORMAL\n")
    for i, rel in enumerate(("images/a.png", "images/b.png", "locked/c.png")):
        write_image(tmp_path / rel, i)
    lock(tmp_path / "locked")
    spec = open_dataset(tmp_path / "labels.csv",
                        mapping={"image": "image", "labels": ["label"]})
    assert [it.path for it in spec.items] == ["images/a.png", "images/b.png"]
    assert [(p.kind, p.paths) for p in spec.problems] == [
        ("unreadable_folder", ["locked"]), ("missing", ["locked/c.png"])]


def test_column_guesses_ignore_case_spaces_and_separators(tmp_path):
    import pandas as pd

    from cxr_desktop.core.data.importers.mapping import complete_mapping

    frame = pd.DataFrame(columns=["File Name", "Finding", "PatientID", "View", "Age"])
    mapping = complete_mapping(None, frame, tmp_path / "labels.csv")
    assert (mapping.image, mapping.labels, mapping.patient) == (
        "File Name", ["Finding"], "PatientID")
    frame = pd.DataFrame(columns=["image-path", "Patient_Id", "Diagnosis", "data.split"])
    mapping = complete_mapping(None, frame, tmp_path / "labels.csv")
    assert (mapping.image, mapping.labels, mapping.patient, mapping.split) == (
        "image-path", ["Diagnosis"], "Patient_Id", None)
