"""Crash reports keep tracebacks useful and carry no patient data."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

import cxr_desktop
from cxr_desktop.core import crashlog, paths
from cxr_desktop.core.crashlog import scrub, summary, write_crash

PHI = ("Jane", "Doe", "12345678", "0099887766", "113619")
PATIENT_FILE = "/data/studies/Doe Jane 12345678/chest PA.dcm"
UID = "1.2.840.113619.2.55.3.604688119.969.1268071029.320"


def _raise_with_phi() -> BaseException:
    try:
        raise ValueError(f"{PATIENT_FILE}: cannot decode; PatientName 'Doe^Jane' "
                         f"MRN 0099887766 SOPInstanceUID {UID}")
    except ValueError as exc:
        return exc


def test_scrub_replaces_a_patient_path_by_a_hashed_token_that_keeps_the_suffix() -> None:
    out = scrub(f"{PATIENT_FILE}: cannot decode")
    assert re.fullmatch(r"<file:[0-9a-f]{8}\.dcm>: cannot decode", out)
    assert scrub(PATIENT_FILE) == scrub(PATIENT_FILE)  # one file, one token per session
    assert scrub(PATIENT_FILE) != scrub("/data/studies/Roe Rick/chest PA.dcm")


@pytest.mark.parametrize("text", [
    "FileNotFoundError: [Errno 2] No such file or directory: '/home/u/Doe Jane.png'",
    r"C:\Users\rad\Doe Jane\x.dcm: unreadable",
    "row 3: images/Doe_Jane_0042.png not found",
    "~/scans/Doe/img.jpg",
])
def test_scrub_removes_paths_in_every_form(text: str) -> None:
    out = scrub(text)
    assert "Doe" not in out and "Jane" not in out
    assert "<file:" in out


def test_scrub_removes_names_ids_and_uids_but_keeps_versions() -> None:
    out = scrub(f"name Doe^Jane^M id 0099887766 uid {UID} torch 2.14.1")
    assert out == "name <name> id <id> uid <uid> torch 2.14.1"
    assert scrub("PersonName('Doe^Jane Mary')") == "PersonName('<name>')"


def test_scrub_keeps_our_module_paths_python_paths_and_line_numbers() -> None:
    ours = Path(cxr_desktop.__file__).parent / "core" / "io" / "loader.py"
    theirs = Path(os.__file__)
    text = (f'  File "{ours}", line 1234567, in load_image\n'
            f'  File "{theirs}", line 42, in fspath\n'
            "    ~~~~^^^^^^^^^^\n")
    assert scrub(text) == text


def test_summary_is_one_scrubbed_line() -> None:
    line = summary(_raise_with_phi())
    assert line.startswith("ValueError: <file:") and "\n" not in line
    assert not any(word in line for word in PHI)


def test_write_crash_appends_atomically_a_report_without_phi(monkeypatch) -> None:
    replaced: list[Path] = []
    real_replace = os.replace

    def spy(src, dst) -> None:
        replaced.append(Path(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    exc = _raise_with_phi()
    first = write_crash(type(exc), exc, exc.__traceback__, "the GUI thread")
    second = write_crash(KeyError, KeyError("Doe^Jane"), None, "a background thread")
    assert first == second == paths.log_dir() / "crash.log"
    assert replaced == [first, first]  # each report: a temporary file, then os.replace
    assert [p.name for p in first.parent.iterdir()] == ["crash.log"]  # no temp file left
    text = first.read_text(encoding="utf-8")
    assert text.count("=== ") == 2
    assert "uncaught ValueError in the GUI thread" in text
    assert "uncaught KeyError in a background thread" in text
    assert f"Python {sys.version_info.major}.{sys.version_info.minor}" in text
    assert "torch " in text and f"cxr-desktop {cxr_desktop.__version__}" in text
    assert re.search(r'test_crashlog\.py", line \d+, in _raise_with_phi', text) is None
    assert re.search(r"line \d+, in _raise_with_phi", text)  # the line number is kept
    assert not any(word in text for word in PHI)


def test_the_log_rotates_when_it_grows_too_big(monkeypatch) -> None:
    monkeypatch.setattr(crashlog, "MAX_LOG_BYTES", 600)
    exc = _raise_with_phi()
    for _ in range(3):
        log = write_crash(type(exc), exc, exc.__traceback__, "test")
    assert log.with_name("crash.log.1").exists()
    assert log.stat().st_size <= 600


def test_record_crash_never_raises_when_the_log_cannot_be_written(monkeypatch,
                                                                  tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(paths, "log_dir", lambda: blocker / "logs")
    assert crashlog.record_crash(_raise_with_phi(), "test") is None
