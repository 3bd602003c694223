"""Median time from a DICOM file to a prediction and its CAM map, ours against a naive path.

Run: ``python bench/viewer.py [--arch efficientnet_lite0] [--repeat 5] [--method cam]``
(needs pydicom-data, the test extra). Both paths run in this process, on the same model
(random weights: timing does not depend on them), one image at a time, on the CPU unless
``--device cuda``.

- naive: ``pydicom.dcmread(...).pixel_array``, min-max scaling to [0, 1], PIL bilinear
  resize to the model size, the model's forward for the probabilities, then
  pytorch-grad-cam's GradCAM on the last block (its own forward and backward pass).
- ours: ``load_image_for_model`` (JPEG 2000 decoded at the resolution level the model needs,
  uncompressed pixels box-averaged), the training chain, one forward pass whose feature maps
  also give the CAM (no backward) and the scope check, the map resized onto the original
  image and its peak found.

The ratio is ours / naive; the target is at most 0.5 for both files.
"""

from __future__ import annotations

import argparse

import numpy as np
import pydicom
import torch
from PIL import Image
from pydicom.data import get_testdata_file
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from timing import median_seconds

from cxr_desktop.core.infer import CamExplainer, Predictor
from cxr_desktop.core.io import INTENSITY_CHAIN
from cxr_desktop.core.io.reduced import load_image_for_model
from cxr_desktop.core.models import build_model

FILES = ("RG1_UNCI.dcm", "RG1_J2KR.dcm")
TARGET = 0.5



def naive(path: str, model: torch.nn.Module, size: int, device: torch.device) -> np.ndarray:
    pixels = pydicom.dcmread(path).pixel_array.astype(np.float32)
    scaled = (pixels - pixels.min()) / max(float(pixels.max() - pixels.min()), 1e-6)
    resized = Image.fromarray(scaled, mode="F").resize((size, size), Image.Resampling.BILINEAR)
    x = torch.from_numpy(np.asarray(resized, dtype=np.float32).copy())[None, None].to(device)
    with torch.no_grad():
        torch.sigmoid(model(x))
    with GradCAM(model=model, target_layers=[model.cam_layers()[model.default_cam_layer]]) \
            as cam:
        return cam(input_tensor=x, targets=[ClassifierOutputTarget(0)])[0]


def ours(path: str, predictor: Predictor, method: str) -> tuple[int, int] | None:
    explainer = CamExplainer(predictor)  # a new image: nothing cached from the last round
    image = load_image_for_model(path, predictor.input_size)
    prediction = predictor.predict(image.radiograph)
    return explainer.explain(image.radiograph, method, prediction=prediction,
                             shape=image.shape).peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="efficientnet_lite0")
    parser.add_argument("--size", type=int, default=0, help="input size (0: the arch's)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--method", default="cam", help="our CAM method (cam, gradcam, ...)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    args = parser.parse_args()
    torch.manual_seed(0)
    model = build_model(args.arch, 1, pretrained="none")
    size = args.size or model.input_size
    metadata = {"arch": args.arch, "task": "binary", "classes": ["normal", "abnormal"],
                "output_names": ["abnormal"], "input_size": size, "threshold": 0.5,
                "intensity_chain": INTENSITY_CHAIN, "training_scope": None}
    predictor = Predictor(model, metadata, device=args.device)
    device = torch.device(args.device)
    naive_model = predictor.model  # the same frozen weights; GradCAM needs grads on them
    naive_model.requires_grad_(True)
    print(f"{args.arch} at {size} px on {args.device}, {torch.get_num_threads()} threads, "
          f"median of {args.repeat}; ours uses {args.method}")
    print(f"{'file':<14} {'naive':>10} {'ours':>10} {'ratio':>7}  target <= {TARGET}")
    for name in FILES:
        path = get_testdata_file(name)
        naive_model.requires_grad_(True)
        plain = median_seconds(lambda p=path: naive(p, naive_model, size, device), args.repeat)
        naive_model.requires_grad_(False)
        fast = median_seconds(lambda p=path: ours(p, predictor, args.method), args.repeat)
        ratio = fast / plain
        verdict = "ok" if ratio <= TARGET else "MISSED"
        print(f"{name:<14} {plain * 1000:>8.1f}ms {fast * 1000:>8.1f}ms {ratio:>7.2f}  {verdict}")


if __name__ == "__main__":
    main()
