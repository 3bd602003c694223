"""cxr-desktop: an offline workbench to build chest X-ray classifiers and see what they see."""

__version__ = "0.1.0"
