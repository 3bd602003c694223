"""Reading a JSON file with one-line errors that name the file (writes: ``atomic``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cxr_desktop.core.errors import FileError


def read_json(path: str | Path, error: type[FileError] = FileError) -> Any:
    """The parsed content of ``path``; ``error(path, reason)`` for a missing, unreadable or
    malformed file."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(path, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(path, f"cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise error(path, f"not valid JSON (line {exc.lineno}: {exc.msg})") from None
