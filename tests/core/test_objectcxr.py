"""Object-CXR annotation strings and CSVs: both spellings read, the public one written."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cxr_desktop.core.annotations import Shape
from cxr_desktop.core.annotations.objectcxr import (
    format_objectcxr,
    parse_objectcxr,
    read_objectcxr_csv,
    write_objectcxr_csv,
)
from cxr_desktop.core.errors import DatasetError

coord = st.integers(min_value=0, max_value=4000)


@st.composite
def shapes(draw) -> Shape:
    kind = draw(st.sampled_from(["rectangle", "ellipse", "polygon"]))
    if kind == "polygon":
        points = draw(st.lists(st.tuples(coord, coord), min_size=3, max_size=8))
    else:
        x1, x2 = sorted(draw(st.lists(coord, min_size=2, max_size=2)))
        y1, y2 = sorted(draw(st.lists(coord, min_size=2, max_size=2)))
        points = [(x1, y1), (x2, y2)]
    return Shape("object", kind, tuple(points))


@given(st.lists(shapes(), max_size=5))
def test_format_then_parse_is_exact(items):
    text = format_objectcxr(items)
    assert ".0" not in text
    assert parse_objectcxr(text) == items


def test_public_and_alternate_spellings():
    public = "0 10 20 30 40;1 5 5 15 25;2 1 1 9 1 5 8"
    alternate = "0;10;20;30;40,1;5;5;15;25,2;1;1;9;1;5;8"
    expected = [Shape("object", "rectangle", ((10, 20), (30, 40))),
                Shape("object", "ellipse", ((5, 5), (15, 25))),
                Shape("object", "polygon", ((1, 1), (9, 1), (5, 8)))]
    assert parse_objectcxr(public) == expected
    assert parse_objectcxr(alternate) == expected
    assert parse_objectcxr("") == []
    assert format_objectcxr(expected) == public


@pytest.mark.parametrize(("text", "reason"), [
    ("3 1 2 3 4", "3"), ("0 1 2 3", "4 numbers"), ("2 1 2 3 4", "polygon"),
    ("0 a b c d", "not a number"),
])
def test_malformed_strings_say_why(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_objectcxr(text)


def test_csv_round_trip_with_either_image_column(tmp_path):
    mapping = {"a.jpg": [Shape("object", "rectangle", ((1, 2), (3, 4)))], "b.jpg": []}
    path = write_objectcxr_csv(tmp_path / "train.csv", mapping)
    assert path.read_text().splitlines()[0] == '"image_name","annotation"'
    assert read_objectcxr_csv(path) == mapping
    other = tmp_path / "dev.csv"
    other.write_text('image_path,annotation\nc.jpg,"1 0 0 5 5"\n')
    assert read_objectcxr_csv(other)["c.jpg"][0].shape_type == "ellipse"


def test_bad_csv_names_file_and_row(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text('image_name,annotation\nok.jpg,""\nbad.jpg,"7 1 2 3 4"\n')
    with pytest.raises(DatasetError) as info:
        read_objectcxr_csv(path)
    assert str(path) in str(info.value) and "3" in str(info.value)
