"""Annotations as plain data (labelme-style shapes) and their file codecs; no Qt."""

from cxr_desktop.core.annotations.shapes import SHAPE_TYPES, Shape

__all__ = ["SHAPE_TYPES", "Shape"]
