"""Training augmentations as batched torch ops, run on the training device.

One affine warp (flip, rotation, zoom, shift through ``affine_grid``/``grid_sample``) and a
brightness/contrast change per image, drawn from one generator so a seed repeats a run. The
dataset tab's ``preview`` runs the very same function on one image.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from cxr_desktop.core.train.config import AugmentSettings


def to_float(batch_uint8: torch.Tensor) -> torch.Tensor:
    """(B, H, W) or (B, 1, H, W) uint8 -> (B, 1, H, W) float32 in [0, 1]."""
    if batch_uint8.ndim == 3:
        batch_uint8 = batch_uint8.unsqueeze(1)
    return batch_uint8.float().div_(255.0)


def _affine(draws: torch.Tensor, settings: AugmentSettings) -> torch.Tensor:
    """(B, 2, 3) matrices mapping output to input coordinates, from uniform draws in [0, 1)."""
    signed = draws * 2.0 - 1.0
    angle = signed[:, 0] * math.radians(settings.rotate_deg)
    zoom = 1.0 + signed[:, 1] * settings.scale
    shift_x = signed[:, 2] * 2.0 * settings.translate
    shift_y = signed[:, 3] * 2.0 * settings.translate
    flip = torch.where(draws[:, 4] < 0.5, -1.0, 1.0) if settings.flip else torch.ones_like(zoom)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    row0 = torch.stack([cos * flip, -sin, shift_x], dim=1)
    row1 = torch.stack([sin * flip, cos, shift_y], dim=1)
    return torch.stack([row0, row1], dim=1)


def augment_batch(
    images: torch.Tensor, settings: AugmentSettings, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Randomly transform a (B, 1, H, W) float batch in [0, 1]; returns a new tensor."""
    if not settings.enabled or images.shape[0] == 0:
        return images
    batch = images.shape[0]
    draws = torch.rand((batch, 7), generator=generator, device=images.device)
    if settings.flip or settings.rotate_deg or settings.scale or settings.translate:
        theta = _affine(draws, settings).to(images.dtype)
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros",
                               align_corners=False)
    if settings.brightness or settings.contrast:
        contrast = 1.0 + (draws[:, 5] * 2.0 - 1.0) * settings.contrast
        brightness = (draws[:, 6] * 2.0 - 1.0) * settings.brightness
        mean = images.mean(dim=(1, 2, 3), keepdim=True)
        images = (images - mean) * contrast.view(-1, 1, 1, 1) + mean + brightness.view(-1, 1, 1, 1)
        images = images.clamp(0.0, 1.0)
    return images


def preview(image_uint8: np.ndarray, settings: AugmentSettings, seed: int = 0) -> np.ndarray:
    """One (H, W) uint8 image as a training batch would see it, for a given seed."""
    generator = torch.Generator().manual_seed(int(seed))
    # A copy: torch warns on read-only arrays, and model_input returns one.
    batch = to_float(torch.from_numpy(np.array(image_uint8, dtype=np.uint8))[None])
    out = augment_batch(batch, settings, generator)[0, 0]
    return (out * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()
