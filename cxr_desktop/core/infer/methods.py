"""The CAM methods the app offers (a module of its own: the CLI lists them without importing
grad-cam)."""

CAM_METHODS = ("cam", "gradcam", "gradcampp", "scorecam", "eigencam")
