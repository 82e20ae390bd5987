"""Image classifiers: a small CNN for tiny images and two torchvision networks.

Every classifier takes ``float`` images in ``[0, 1]`` (``N x 3 x H x W``) and normalizes them itself,
so the data pipeline and an exported ONNX graph need no separate normalization step.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = [
    "Normalized",
    "SmallCNN",
    "small_cnn",
    "resnet18",
    "mobilenet_v3_small",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Normalized(nn.Module):
    """``net((x - mean) / std)``; ``net`` is the torchvision-compatible module (weights load into it)."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, net: nn.Module, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> None:
        super().__init__()
        self.net = net
        self.register_buffer(
            "mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False
        )
        self.register_buffer(
            "std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


def _block(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class SmallCNN(nn.Module):
    """A few conv blocks sized for tiny images (8 px digits up to ~64 px), then global average pooling.

    The number of 2x poolings grows with the image size (one at 8 px, four at 64 px and up), so small
    inputs keep their spatial detail and larger ones stay cheap.
    """

    def __init__(self, num_classes: int, image_size: int, width: int = 32, dropout: float = 0.2) -> None:
        super().__init__()
        pools = int(min(4, max(1, math.floor(math.log2(max(image_size, 2) / 4)))))
        layers: list[nn.Module] = []
        cin, cout = 3, width
        for stage in range(pools):
            layers += _block(cin, cout) + _block(cout, cout)
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
            cin = cout
            if stage < 2:
                cout *= 2
        layers += _block(cin, cout)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(cout, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x)).flatten(1)
        return self.fc(self.dropout(x))


def small_cnn(num_classes: int, image_size: int) -> nn.Module:
    return Normalized(SmallCNN(num_classes, image_size), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))


def resnet18(num_classes: int, image_size: int) -> nn.Module:
    from torchvision.models import resnet18 as tv_resnet18

    return Normalized(tv_resnet18(weights=None, num_classes=num_classes))


def mobilenet_v3_small(num_classes: int, image_size: int) -> nn.Module:
    from torchvision.models import mobilenet_v3_small as tv_mobilenet

    return Normalized(tv_mobilenet(weights=None, num_classes=num_classes))
