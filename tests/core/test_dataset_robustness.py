"""Odd inputs met in the field: link loops, bad label cells, repeated rows, unusual CSVs.

Each test holds a case a tester found wrong: the import must either give correct labels
and report what it left out (``spec.problems``), or fail with one line naming the file.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from dataset_helpers import write_image, write_text

from cxr_desktop.core.data import DatasetSpec, open_dataset
from cxr_desktop.core.data.importers.paths import walk_images
from cxr_desktop.core.data.importers.tables import is_negative_name, read_header, read_table
from cxr_desktop.core.errors import DatasetError


def _link(target, link):
    try:
        os.symlink(target, link, target_is_directory=True)
    except (OSError, NotImplementedError):
        pytest.skip("cannot make symbolic links here")


def _kinds(spec):
    return sorted({p.kind for p in spec.problems})


# --- 1. folder links ---------------------------------------------------------------------
def test_a_link_to_the_folder_itself_is_read_once(tmp_path):
    write_image(tmp_path / "top" / "a.png", 1)
    write_image(tmp_path / "top" / "sub" / "b.png", 2)
    _link(".", tmp_path / "top" / "self")
    _link("..", tmp_path / "top" / "sub" / "up")
    found, problems = walk_images(tmp_path / "top")
    assert found == ["a.png", "sub/b.png"]
    assert [(p.kind, p.paths) for p in problems] == [("folder_link", ["self"]),
                                                      ("folder_link", ["sub/up"])]
    assert all("loop" in p.detail and len(p.detail) < 80 for p in problems)


def test_a_folder_linked_twice_is_read_once_under_its_own_path(tmp_path):
    write_image(tmp_path / "top" / "real" / "a.png", 1)
    _link("real", tmp_path / "top" / "alias")  # sorts before "real"
    found, problems = walk_images(tmp_path / "top")
    assert found == ["real/a.png"]
    assert [(p.kind, p.paths) for p in problems] == [("folder_link", ["alias"])]


def test_class_folder_links_neither_loop_nor_lend_images_to_another_class(tmp_path):
    root = tmp_path / "ds"
    for i in range(3):
        write_image(root / "NORMAL" / f"n{i}.png", i)
        write_image(root / "PNEUMONIA" / f"p{i}.png", 10 + i)
        write_image(tmp_path / "elsewhere" / f"e{i}.png", 20 + i)
    _link("..", root / "NORMAL" / "up")                   # a loop through the root
    _link("../PNEUMONIA", root / "NORMAL" / "pneu")       # another class's folder
    _link(str(tmp_path / "elsewhere"), root / "PNEUMONIA" / "more")  # outside: followed
    spec = open_dataset(root)
    labels = {it.path: it.labels for it in spec.items}
    assert labels == {
        **{f"NORMAL/n{i}.png": "NORMAL" for i in range(3)},
        **{f"PNEUMONIA/p{i}.png": "PNEUMONIA" for i in range(3)},
        **{f"PNEUMONIA/more/e{i}.png": "PNEUMONIA" for i in range(3)},
    }
    links = sorted((p.paths[0], p.detail) for p in spec.problems if p.kind == "folder_link")
    assert [path for path, _ in links] == ["NORMAL/pneu", "NORMAL/up"]
    assert "loop" in links[1][1] and "another folder" in links[0][1]


# --- 2. CheXpert cells other than 1, 0, -1, blank ----------------------------------------
CHEXPERT = """Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Cardiomegaly,Edema,Pneumonia
CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg,F,60,Frontal,PA,,1.0,2.0,yes
CheXpert-v1.0-small/train/patient00002/study1/view1_frontal.jpg,M,61,Frontal,PA,1,0,nan,-1
CheXpert-v1.0-small/train/patient00003/study1/view1_frontal.jpg,M,62,Frontal,AP,,-1.0,0.0,
"""


def _chexpert(tmp_path):
    root = tmp_path / "CheXpert-v1.0-small"
    write_text(root / "train.csv", CHEXPERT)
    for i, line in enumerate(CHEXPERT.splitlines()[1:]):
        write_image(tmp_path / line.split(",")[0], i)
    return root


@pytest.mark.parametrize("blank", ["negative", "mask"])
def test_chexpert_odd_cells_are_masked_and_reported_never_negative(tmp_path, blank):
    spec = open_dataset(_chexpert(tmp_path), blank=blank, uncertain="mask")
    assert spec.classes == ["No Finding", "Cardiomegaly", "Edema", "Pneumonia"]
    by_patient = {it.patient: i for i, it in enumerate(spec.items)}
    targets = spec.targets()
    b = 0.0 if blank == "negative" else np.nan
    np.testing.assert_array_equal(targets[by_patient["patient00001"]], [b, 1, np.nan, np.nan])
    np.testing.assert_array_equal(targets[by_patient["patient00002"]], [1, 0, np.nan, np.nan])
    np.testing.assert_array_equal(targets[by_patient["patient00003"]], [b, np.nan, 0, b])
    bad = [p for p in spec.problems if p.kind == "bad_label"]
    assert [p.paths for p in bad] == [["train/patient00001/study1/view1_frontal.jpg"],
                                      ["train/patient00002/study1/view1_frontal.jpg"]]
    assert bad[0].detail.startswith("train.csv line 2: Edema = '2.0', Pneumonia = 'yes' are "
                                    "not 1, 0, -1 or blank")
    assert bad[1].detail.startswith("train.csv line 3: Edema = 'nan' is not 1, 0, -1")


def test_a_masked_cell_survives_save_and_load_as_json_null(tmp_path):
    spec = open_dataset(_chexpert(tmp_path))
    saved = spec.save(tmp_path / "spec.json")
    text = saved.read_text()
    assert "NaN" not in text and json.loads(text)  # standard JSON
    loaded = DatasetSpec.load(saved)
    np.testing.assert_array_equal(loaded.targets(), spec.targets())
    item = next(it for it in loaded.items if it.patient == "patient00001")
    assert math.isnan(item.labels["Edema"]) and item.labels["Cardiomegaly"] == 1.0


# --- 3. missing-value words in a generic CSV ---------------------------------------------
@pytest.mark.parametrize("word", ["nan", "NaN", "NA", "null", "N/A"])
def test_generic_missing_label_words_are_missing_labels(tmp_path, word):
    rows = ["image,label"]
    for i in range(8):
        write_image(tmp_path / f"{i}.png", i)
        rows.append(f"{i}.png,{word if i == 3 else ('pos' if i % 2 else 'neg')}")
    spec = open_dataset(write_text(tmp_path / "labels.csv", "\n".join(rows) + "\n"))
    assert (spec.task, spec.classes) == ("binary", ["neg", "pos"])
    assert "3.png" not in {it.path for it in spec.items} and len(spec.items) == 7
    assert [(p.kind, p.paths) for p in spec.problems] == [("unlabelled", ["3.png"])]


def test_generic_missing_words_in_a_0_1_column_and_in_label_columns(tmp_path):
    for i in range(4):
        write_image(tmp_path / f"{i}.png", i)
    write_text(tmp_path / "labels.csv",
               "image,label,effusion\n0.png,0,1\n1.png,1,nan\n2.png,nan,0\n3.png,1,NULL\n")
    single = open_dataset(tmp_path / "labels.csv",
                          mapping={"image": "image", "labels": ["label"]})
    assert single.classes == ["no_label", "label"] and len(single.items) == 3
    multi = open_dataset(tmp_path / "labels.csv",
                         mapping={"image": "image", "labels": ["label", "effusion"]})
    assert [it.labels for it in multi.items] == [
        {"label": 0.0, "effusion": 1.0}, {"label": 1.0}, {"effusion": 0.0}, {"label": 1.0}]


def test_separator_labels_skip_empty_cells_and_drop_nan_tokens(tmp_path):
    for i in range(4):
        write_image(tmp_path / f"{i}.png", i)
    write_text(tmp_path / "labels.csv",
               "image,findings\n0.png,Mass|Nodule\n1.png,No Finding\n2.png,\n3.png,nan\n")
    spec = open_dataset(tmp_path / "labels.csv", mapping={"image": "image",
                                                          "labels": ["findings"],
                                                          "separator": "|"})
    assert spec.classes == ["Mass", "Nodule"]
    assert {it.path: it.labels for it in spec.items} == {
        "0.png": {"Mass": 1.0, "Nodule": 1.0}, "1.png": {}}
    assert [(p.kind, p.paths) for p in spec.problems] == [("unlabelled", ["2.png"]),
                                                          ("unlabelled", ["3.png"])]


# --- 4. saved specs whose labels are not classes -----------------------------------------
def _saved(tmp_path, task, classes, positive, labels):
    write_image(tmp_path / "a.png", 1)
    spec = DatasetSpec(tmp_path, task, classes, positive, [])
    data = spec.to_dict()
    data["items"] = [{"path": "a.png", "split": "train", "labels": labels}]
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(("task", "classes", "positive", "labels", "message"), [
    ("binary", ["neg", "pos"], "pos", "bogus_class",
     r"item 1 \(a\.png\): label 'bogus_class' is not one of the classes \['neg', 'pos'\]"),
    ("multiclass", ["a", "b", "c"], None, "d", r"item 1 \(a\.png\): label 'd' is not one of"),
    ("multilabel", ["Edema"], None, {"Edemaa": 1.0},
     r"item 1 \(a\.png\): label 'Edemaa' is not one of"),
    ("multilabel", ["Edema"], None, {"Edema": 2.0},
     r"item 1 \(a\.png\): Edema = 2\.0 is not 1, 0, -1"),
    ("binary", ["neg", "pos"], "pos", {"pos": 1.0},
     r"item 1 \(a\.png\): label \{'pos': 1\.0\} is not a class name"),
])
def test_a_saved_spec_with_labels_outside_its_classes_is_refused(tmp_path, task, classes,
                                                                 positive, labels, message):
    path = _saved(tmp_path, task, classes, positive, labels)
    with pytest.raises(DatasetError, match=r"^[^\n]*spec\.json: not a valid dataset spec: "
                                           + message + r"[^\n]*$"):
        DatasetSpec.load(path)
    with pytest.raises(DatasetError, match="bogus_class|not one of|not 1, 0|class name"):
        open_dataset(path)


# --- 5. split values that are not splits -------------------------------------------------
def test_unknown_split_values_are_reported_with_their_count(tmp_path):
    rows = ["image,label,split"]
    for i in range(12):
        write_image(tmp_path / f"{i}.png", i)
        split = ["train", "valid", "test", "bogus"][i % 4]
        rows.append(f"{i}.png,{'pos' if i % 2 else 'neg'},{split}")
    rows.append("12.png,neg,")  # blank: not given, not reported
    write_image(tmp_path / "12.png", 12)
    spec = open_dataset(write_text(tmp_path / "labels.csv", "\n".join(rows) + "\n"))
    [problem] = spec.problems
    assert problem.kind == "unknown_split"
    assert problem.paths == ["3.png", "7.png", "11.png"]
    assert problem.detail.startswith("split 'bogus' in column 'split' (3 rows) is not train, "
                                     "val or test")
    assert "given a split at random" in problem.detail
    by_path = {it.path: it.split for it in spec.items}
    assert by_path["1.png"] == "val" and by_path["0.png"] == "train"
    assert all(by_path[p] in ("train", "val", "test") for p in problem.paths)


# --- 6. the same image listed twice ------------------------------------------------------
def test_an_image_listed_with_two_labels_is_left_out_and_reported(tmp_path):
    rows = ["image,label"]
    for i in range(6):
        write_image(tmp_path / f"{i}.png", i)
        rows.append(f"{i}.png,{'pos' if i % 2 else 'neg'}")
    rows += ["0.png,pos", "1.png,pos"]  # 0: a conflict; 1: the same label again
    spec = open_dataset(write_text(tmp_path / "labels.csv", "\n".join(rows) + "\n"))
    paths = [it.path for it in spec.items]
    assert "0.png" not in paths and paths.count("1.png") == 1 and len(paths) == 5
    problems = {p.kind: p for p in spec.problems}
    assert set(problems) == {"label_conflict", "duplicate_row"}
    assert problems["label_conflict"].paths == ["0.png"]
    assert "labels.csv line 2: neg" in problems["label_conflict"].detail
    assert "labels.csv line 8: pos" in problems["label_conflict"].detail
    assert problems["duplicate_row"].paths == ["1.png"]


def test_nih_and_objectcxr_rows_with_two_labels_are_left_out(tmp_path):
    nih = tmp_path / "nih"
    write_text(nih / "Data_Entry_2017.csv",
               "Image Index,Finding Labels,Patient ID\na.png,Mass,1\nb.png,Hernia,2\n"
               "a.png,No Finding,1\n")
    write_image(nih / "images" / "a.png", 1)
    write_image(nih / "images" / "b.png", 2)
    spec = open_dataset(nih)
    assert [it.path for it in spec.items] == ["images/b.png"] and spec.classes == ["Hernia"]
    [conflict] = spec.problems
    assert (conflict.kind, conflict.paths) == ("label_conflict", ["images/a.png"])
    assert "Data_Entry_2017.csv line 4: none" in conflict.detail
    ocx = tmp_path / "ocx"
    write_text(ocx / "train.csv", 'image_name,annotation\n1.jpg,"0 1 1 5 5"\n2.jpg,\n'
                                  "1.jpg,\n3.jpg,\n")
    for i in (1, 2, 3):
        write_image(ocx / "train" / f"{i}.jpg", i)
    spec = open_dataset(ocx / "train.csv", format="objectcxr")
    assert sorted(it.path for it in spec.items) == ["train/2.jpg", "train/3.jpg"]
    assert [(p.kind, p.paths) for p in spec.problems] == [("label_conflict", ["train/1.jpg"])]


# --- 7. NIH finding names in another case ------------------------------------------------
def test_nih_findings_match_the_14_names_whatever_their_case(tmp_path):
    write_text(tmp_path / "Data_Entry_2017.csv",
               "Image Index,Finding Labels,Patient ID,View Position\n"
               "a.png,Effusion,1,PA\nb.png,effusion,2,PA\nc.png, EFFUSION |mass,3,AP\n"
               "d.png,pleural thickening,4,PA\ne.png,no finding,5,PA\nf.png,Effusoin,6,PA\n")
    for i, name in enumerate("abcdef"):
        write_image(tmp_path / "images" / f"{name}.png", i)
    spec = open_dataset(tmp_path)
    assert spec.classes == ["Effusion", "Effusoin", "Mass", "Pleural_Thickening"]
    labels = {it.path: it.labels for it in spec.items}
    assert labels["images/b.png"] == {"Effusion": 1.0}
    assert labels["images/c.png"] == {"Effusion": 1.0, "Mass": 1.0}
    assert labels["images/d.png"] == {"Pleural_Thickening": 1.0}
    assert labels["images/e.png"] == {}
    [unknown] = spec.problems
    assert (unknown.kind, unknown.paths) == ("unknown_finding", ["images/f.png"])
    assert "'Effusoin'" in unknown.detail


def test_nih_rows_without_finding_labels_are_left_out(tmp_path):
    write_text(tmp_path / "Data_Entry_2017.csv",
               "Image Index,Finding Labels\na.png,Mass\nb.png,\nc.png,No Finding\n")
    for i, name in enumerate("abc"):
        write_image(tmp_path / f"{name}.png", i)
    spec = open_dataset(tmp_path)
    assert sorted(it.path for it in spec.items) == ["a.png", "c.png"]
    assert [(p.kind, p.paths) for p in spec.problems] == [("unlabelled", ["b.png"])]


# --- 8. separators and encodings ---------------------------------------------------------
@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_a_csv_split_on_another_separator_is_read(tmp_path, sep):
    rows = [sep.join(["image", "label", "patient"])]
    for i in range(6):
        write_image(tmp_path / f"{i}.png", i)
        rows.append(sep.join([f"{i}.png", "pos" if i % 2 else "neg", f"p{i}"]))
    path = write_text(tmp_path / "labels.csv", "\n".join(rows) + "\n")
    assert read_header(path) == ["image", "label", "patient"] == list(read_table(path).columns)
    spec = open_dataset(path)
    assert spec.classes == ["neg", "pos"] and len(spec.items) == 6
    assert {it.patient for it in spec.items} == {f"p{i}" for i in range(6)}


def test_a_comma_csv_with_semicolons_in_cells_stays_comma_separated(tmp_path):
    path = write_text(tmp_path / "labels.csv", "image,label\na;b.png,x;y\n")
    assert read_header(path) == ["image", "label"]
    assert read_table(path)["image"].tolist() == ["a;b.png"]


def test_a_windows_1252_csv_is_read(tmp_path):
    for i in range(4):
        write_image(tmp_path / f"{i}.png", i)
    text = "image;diagnose\n" + "".join(
        f"{i}.png;{'négatif' if i % 2 else 'Lungenentzündung'}\n" for i in range(4))
    path = tmp_path / "labels.csv"
    path.write_bytes(text.encode("cp1252"))
    assert read_header(path) == ["image", "diagnose"]
    spec = open_dataset(path, mapping={"image": "image", "labels": ["diagnose"]})
    assert spec.classes == ["négatif", "Lungenentzündung"]
    assert spec.positive_class == "Lungenentzündung"
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufeffimage,label\n0.png,é\n".encode())
    assert read_header(bom) == ["image", "label"] and read_table(bom)["label"][0] == "é"


def test_a_file_with_nul_bytes_is_still_not_a_table(tmp_path):
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"a,b\n\x00\x80\x81\xff\n")
    with pytest.raises(DatasetError, match=r"^[^\n]*binary\.csv: not a readable CSV table: "
                                           r"'utf-8' codec can't decode[^\n]*$"):
        read_table(binary)


# --- 9. errors that say the right reason -------------------------------------------------
def test_error_messages_give_the_real_reason(tmp_path):
    for i in range(3):
        write_image(tmp_path / f"{i}.png", i)
    empty_labels = write_text(tmp_path / "a" / "labels.csv",
                              "image,label\n../0.png,\n../1.png, \n../2.png,nan\n")
    with pytest.raises(DatasetError, match=r"labels\.csv: no row has a label"):
        open_dataset(empty_labels)
    header_only = write_text(tmp_path / "b" / "labels.csv", "image,label\n")
    with pytest.raises(DatasetError, match=r"labels\.csv: the table has no rows"):
        open_dataset(header_only)
    filtered = write_text(tmp_path / "c" / "labels.csv",
                          "image,label,view\n../0.png,a,PA\n../1.png,b,AP\n../2.png,a,PA\n")
    with pytest.raises(DatasetError, match=r"no rows with view LL \(values present: PA, AP\)"):
        open_dataset(filtered, mapping={"filters": ["view == LL"]})


def test_a_view_filter_leaving_no_rows_names_the_views_there_are(tmp_path):
    write_text(tmp_path / "Data_Entry_2017.csv",
               "Image Index,Finding Labels,View Position\na.png,Mass,PA\nb.png,Mass,PA\n"
               "c.png,No Finding,AP\n")
    for i, name in enumerate("abc"):
        write_image(tmp_path / f"{name}.png", i)
    with pytest.raises(DatasetError, match=r"Data_Entry_2017\.csv: no rows with View Position "
                                           r"XX \(values present: PA, AP\)$"):
        open_dataset(tmp_path, view="XX")
    root = _chexpert(tmp_path / "chex")
    with pytest.raises(DatasetError, match=r"train\.csv: no rows with AP/PA LL \(values "
                                           r"present: PA, AP\)$"):
        open_dataset(root, view="LL")


def test_one_class_folder_is_reported_as_one_class(tmp_path):
    for i in range(3):
        write_image(tmp_path / "ds" / "NORMAL" / f"{i}.png", i)
    with pytest.raises(DatasetError, match=r"only one class found: NORMAL; a dataset needs "
                                           r"at least two"):
        open_dataset(tmp_path / "ds")
    write_image(tmp_path / "two" / "NORMAL" / "0.png", 0)
    (tmp_path / "two" / "EMPTY").mkdir()
    with pytest.raises(DatasetError, match=r"only one class found: NORMAL"):
        open_dataset(tmp_path / "two")


def test_images_beside_class_folders_are_reported(tmp_path):
    for i in range(2):
        write_image(tmp_path / "A" / f"{i}.png", i)
        write_image(tmp_path / "B" / f"{i}.png", 10 + i)
    write_image(tmp_path / "stray.png", 20)
    spec = open_dataset(tmp_path)
    assert len(spec.items) == 4
    assert [(p.kind, p.paths) for p in spec.problems] == [("unlabelled", ["stray.png"])]


# --- 10. which class is the positive one -------------------------------------------------
@pytest.mark.parametrize("name", ["Normal befund", "Normalbefund", "normal_findings",
                                  "Negative for pneumonia", "healthy lungs", "No Finding",
                                  "NORMAL", "non-covid", "Gesund"])
def test_negative_names(name):
    assert is_negative_name(name)


@pytest.mark.parametrize("name", ["Lungenentzündung", "Pneumonia", "abnormal", "Nodule",
                                  "Notable mass", "COVID-19"])
def test_positive_names(name):
    assert not is_negative_name(name)


def test_the_normal_folder_is_the_negative_class_in_german(tmp_path):
    root = tmp_path / "Ärzte röntgen"
    for i in range(3):
        write_image(root / "Normal befund" / f"bild {i}.png", i)
        write_image(root / "Lungenentzündung" / f"bild {i}.png", 10 + i)
    spec = open_dataset(root)
    assert spec.positive_class == "Lungenentzündung"
    assert spec.classes == ["Normal befund", "Lungenentzündung"]
    targets = {it.path: t for it, t in zip(spec.items, spec.targets(), strict=True)}
    assert targets["Lungenentzündung/bild 0.png"] == 1.0
    assert targets["Normal befund/bild 0.png"] == 0.0
