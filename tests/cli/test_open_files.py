"""Files given without a subcommand open in the GUI (a desktop entry's %F, a double-click)."""

from __future__ import annotations

import pytest

import cxr_desktop.gui.app as gui_app
from cxr_desktop.cli import main


def test_existing_files_start_the_gui_on_them(tmp_path, monkeypatch):
    opened = {}
    monkeypatch.setattr(gui_app, "run_gui",
                        lambda demo=False, open_paths=(): opened.update(paths=list(open_paths))
                        or 0)
    image = tmp_path / "chest.png"
    image.write_bytes(b"x")
    assert main([str(image)]) == 0
    assert opened["paths"] == [str(image)]


def test_a_typo_is_still_an_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["trian", "data"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
