"""ResNet layers run without padding ("valid" convolutions), and where their grid cells lie.

A torchvision ResNet pads every convolution with zeros. For a memory of patch features that makes a
patch's feature depend on *where* it sits: the features within the receptive field (about 100 px for
``layer2``) of an image border mix the content with the padding, so a border patch of a test image only
finds a close bank entry if some training image had the same content at the same distance from its
border. Crops of real photos are exactly that case: every test crop's interior is covered by many
training crops, its border band by almost none, and the highest-scoring *good* test images of the padded
``patchcore`` peak at their borders.

Here the same weights run without any padding, so a feature is a function of its pixels only, wherever
they lie: :func:`valid_stem` (``conv1`` 7 x 7 / 2, ``bn1``, ``relu``, ``maxpool`` 3 x 3 / 2: cell ``j``
sees pixels ``4 j ... 4 j + 10``) and :func:`valid_block` (a stride-1 ``BasicBlock``, the identity cropped
to match: 2 cells lost per side). :func:`grid_to_pixels` turns a score grid whose cell ``j`` is centred at
``first + 4 j`` px into a map at the input size.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["STRIDE", "valid_stem", "valid_block", "grid_to_pixels"]

STRIDE = 4


def valid_stem(net: Any, x: torch.Tensor) -> torch.Tensor:
    """A torchvision ResNet's stem without padding: ``H x W -> (H - 11) // 4 + 1`` cells a side."""
    conv = net.conv1
    s = F.conv2d(x, conv.weight, conv.bias, stride=conv.stride)
    return F.max_pool2d(net.relu(net.bn1(s)), 3, 2)


def valid_block(block: Any, x: torch.Tensor) -> torch.Tensor:
    """A torchvision ``BasicBlock`` (stride 1, no downsampling) without padding: ``h x w -> h-4 x w-4``."""
    out = F.relu(block.bn1(F.conv2d(x, block.conv1.weight, block.conv1.bias)))
    out = block.bn2(F.conv2d(out, block.conv2.weight, block.conv2.bias))
    return F.relu(out + x[:, :, 2:-2, 2:-2])


def grid_to_pixels(grid: torch.Tensor, first: float, height: int, width: int) -> torch.Tensor:
    """An ``N x h x w`` score grid (cell ``j`` centred at ``first + 4 j`` px) as ``N x height x width``
    maps: bilinear between the cell centres, the nearest cell's value beyond them."""
    up = F.interpolate(
        grid[:, None],
        size=(STRIDE * grid.shape[-2], STRIDE * grid.shape[-1]),
        mode="bilinear",
        align_corners=False,
    )
    # pixel p of ``up`` sits at cell (p + 0.5) / 4 - 0.5: cell j's centre at p = 4 j + 1.5
    top = left = max(0, int(round(first - 1.5)))
    up = up[:, :, : height - top, : width - left]
    bottom, right = height - top - up.shape[-2], width - left - up.shape[-1]
    return F.pad(up, (left, right, top, bottom), mode="replicate")[:, 0]
