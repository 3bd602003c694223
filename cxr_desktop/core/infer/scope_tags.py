"""The DICOM-tag half of the scope check: body part, modality and view against training.

The checkpoint records the DICOM modalities, body parts and views of the training images
(``metadata["training_scope"]``). A tag the image has and training never saw makes it out of
scope (a tibia, ``EXTREMITY``, shown to a model trained on ``CHEST``). When training saw no
value of a tag at all (a model trained on PNGs), the app's purpose decides: a chest
radiograph model is assumed, so the body part must be CHEST (or THORAX, LUNG) and the
modality CR or DX; the reason says that this was assumed. A missing tag is never evidence
against an image. This signal is independent of the image score (:mod:`.scope`).
"""

from __future__ import annotations

from typing import Any

from cxr_desktop.core.io import Radiograph

#: The scope assumed for a tag that no training image had: a chest radiograph model.
DEFAULT_MODALITIES = ("CR", "DX")
DEFAULT_BODY_PARTS = ("CHEST",)
BODY_PART_ALIASES = {"THORAX": "CHEST", "LUNG": "CHEST", "LUNGS": "CHEST"}
# (training_scope key, Radiograph attribute, words, default when training saw no value)
_TAGS: tuple[tuple[str, str, str, tuple[str, ...] | None], ...] = (
    ("modalities", "modality", "modality", DEFAULT_MODALITIES),
    ("body_parts", "body_part", "body part", DEFAULT_BODY_PARTS),
    ("views", "view_position", "view", None),
)


def _norm(value: str | None) -> str | None:
    text = (value or "").strip().upper()
    return BODY_PART_ALIASES.get(text, text) or None


def tag_problems(radiograph: Radiograph, training_scope: dict[str, Any] | None) -> list[str]:
    """Plain sentences, one per DICOM tag that training did not cover."""
    problems = []
    seen = training_scope or {}
    for key, attribute, words, default in _TAGS:
        value = _norm(getattr(radiograph, attribute))
        if value is None:
            continue
        known = sorted({n for n in (_norm(str(k)) for k in seen.get(key) or {}) if n})
        if known and value not in known:
            problems.append(f"{words} {value} was not in the training data "
                            f"(seen: {', '.join(known)})")
        elif not known and default is not None and value not in default:
            problems.append(f"{words} {value} is not a chest radiograph's "
                            f"({' or '.join(default)}; the training images had no DICOM "
                            f"{words} tag, so a chest model is assumed)")
    return problems


def tag_check(radiograph: Radiograph,
              training_scope: dict[str, Any] | None) -> tuple[bool, str]:
    """(in scope by its tags, the reason in plain words)."""
    problems = tag_problems(radiograph, training_scope)
    if problems:
        return False, "; ".join(problems)
    if radiograph.source_format == "DICOM":
        return True, "DICOM tags match the training data"
    return True, "no DICOM tags to check"
