"""Evaluation choices, kept free of heavy imports so the command line parses quickly."""

from __future__ import annotations

import re

METHODS = ("mean", "vote", "auc-weighted")
DEFAULT_TEMPERATURE = 0.1
ALL_SPLITS = "all"

_SENS = re.compile(r"^sens(?:itivity)?:(\d*\.?\d+)$")


def parse_threshold(text: str) -> str | float:
    """``run``, ``youden``, ``sens:0.9`` or a number in (0, 1); ValueError otherwise."""
    text = text.strip().lower()
    if text in ("run", "youden"):
        return text
    match = _SENS.match(text)
    if match:
        value = float(match.group(1))
        if not 0 < value <= 1:
            raise ValueError(f"target sensitivity must be in (0, 1], not {value}")
        return f"sens:{value}"
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"threshold must be run, youden, sens:0.9 or a number, not {text!r}"
                         ) from None
    if not 0 < value < 1:
        raise ValueError(f"threshold must be between 0 and 1, not {value}")
    return value
