"""A small convolutional network for training from scratch, fast on a CPU at 128-224 px."""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

# Output channels of the four blocks; each block halves the resolution.
BLOCK_CHANNELS = (32, 64, 128, 256)


def _block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Strided conv3x3 -> BN -> ReLU -> conv3x3 -> BN -> ReLU: half the resolution."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    """Four conv blocks on one gray channel, 16x downsampling in all (14 x 14 maps at 224 px).

    About 0.65 GMAC at 224 px (a third of ResNet-18), 1.2 M parameters. ``features`` is the
    whole network: :class:`~cxr_desktop.core.models.net.CxrNet` adds pooling and the head.
    """

    def __init__(self, in_channels: int = 1) -> None:
        super().__init__()
        blocks: list[tuple[str, nn.Module]] = []
        previous = in_channels
        for index, channels in enumerate(BLOCK_CHANNELS, start=1):
            blocks.append((f"block{index}", _block(previous, channels)))
            previous = channels
        self.features = nn.Sequential(OrderedDict(blocks))
        self.num_features = previous
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)
