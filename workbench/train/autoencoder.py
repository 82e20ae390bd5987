"""Anomaly detection by reconstruction: a convolutional autoencoder trained on good images only.

An image's anomaly score is the mean of its ``top_k`` largest per-pixel reconstruction errors: a small
defect then moves the score even though it covers few pixels. The decision threshold is chosen on the
validation split (best F1) by the trainer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ConvAutoencoder", "conv_ae", "anomaly_scores", "pixel_errors"]


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 4, stride=2, padding=1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2)
    )


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU()
    )


class ConvAutoencoder(nn.Module):
    """Three stride-2 encoder stages to a narrow bottleneck and back; output in ``[0, 1]``.

    Inputs of any size work: the reconstruction is resized back to the input size when the size is not
    a multiple of 8.
    """

    def __init__(self, width: int = 32, bottleneck: int = 32, top_k_fraction: float = 0.02) -> None:
        super().__init__()
        self.top_k_fraction = float(top_k_fraction)
        self.encoder = nn.Sequential(
            _down(3, width),
            _down(width, width * 2),
            _down(width * 2, width * 4),
            nn.Conv2d(width * 4, bottleneck, 1),
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(bottleneck, width * 4, 1),
            nn.ReLU(),
            _up(width * 4, width * 2),
            _up(width * 2, width),
            nn.ConvTranspose2d(width, 3, 4, stride=2, padding=1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.decoder(self.encoder(x))
        if out.shape[-2:] != x.shape[-2:]:
            out = F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return out


def pixel_errors(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Per-pixel squared reconstruction error averaged over channels: ``N x H x W``."""
    return ((model(x) - x) ** 2).mean(dim=1)


def anomaly_scores(model: nn.Module, x: torch.Tensor, top_k_fraction: float | None = None) -> torch.Tensor:
    """One score per image: the mean of its largest ``top_k_fraction`` pixel errors."""
    frac = getattr(model, "top_k_fraction", 0.02) if top_k_fraction is None else top_k_fraction
    err = pixel_errors(model, x).flatten(1)
    k = max(1, int(round(err.shape[1] * frac)))
    return err.topk(k, dim=1).values.mean(dim=1)


def conv_ae(num_classes: int, image_size: int) -> nn.Module:
    """Builder for the registry; ``num_classes`` is always 2 (good / anomalous) and not used."""
    return ConvAutoencoder()
