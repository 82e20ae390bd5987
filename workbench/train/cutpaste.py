"""Self-supervised backbone training on good images only: CutPaste (Li et al. 2021).

A batch of good images is doubled: the originals (class 0) and copies with one *cut-paste* (class 1: a
rectangle of 2-15% of the image, aspect 0.3-3.3, cut from the same image, brightness-jittered by 0.8-1.2
and +-0.1, pasted elsewhere) or one *scar* (class 2: a thin 2-4 x 10-24 px strip of the same image,
pasted elsewhere). The ResNet-18 stem, ``layer1`` and ``layer2`` (what :class:`PatchCore` reads) plus a
linear head learn to tell the three apart (SGD, momentum 0.9, lr 0.03, weight decay 1e-4, horizontal
flips); the head is then dropped and the patch-feature memory is built on the trained features.

The synthetic anomalies differ from the benchmark's (:mod:`workbench.data.photo_anomaly`, the
``shapes-anomaly`` sample): pasted pixels always come from the same image (never another photo), there
are no solid grey scratches, colour blobs, missing or recoloured discs.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["cutpaste_batch", "train_cutpaste"]


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return float(torch.empty(1).uniform_(lo, hi, generator=g))


def _randint(g: torch.Generator, lo: int, hi: int) -> int:
    return int(torch.randint(lo, max(lo + 1, hi), (1,), generator=g))


def cutpaste_batch(x: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Copies of ``x`` (N x 3 x H x W in [0, 1]) with one cut-paste or scar each, and their classes
    (1 = cut-paste, 2 = scar); the originals are left untouched."""
    n, _, hgt, wid = x.shape
    out = x.clone()
    labels = torch.randint(1, 3, (n,), generator=g)
    for i in range(n):
        if labels[i] == 1:
            area = hgt * wid * _uniform(g, 0.02, 0.15)
            aspect = math.exp(_uniform(g, math.log(0.3), math.log(3.3)))
            h = max(2, min(hgt - 1, int(math.sqrt(area / aspect))))
            w = max(2, min(wid - 1, int(math.sqrt(area * aspect))))
        else:
            h, w = _randint(g, 10, 25) * hgt // 128 or 2, _randint(g, 2, 5)
            h, w = min(h, hgt - 1), min(w, wid - 1)
            if _uniform(g, 0, 1) < 0.5:
                h, w = min(w, hgt - 1), min(h, wid - 1)
        y0, x0 = _randint(g, 0, hgt - h), _randint(g, 0, wid - w)
        y1, x1 = _randint(g, 0, hgt - h), _randint(g, 0, wid - w)
        patch = x[i, :, y0 : y0 + h, x0 : x0 + w] * _uniform(g, 0.8, 1.2) + _uniform(g, -0.1, 0.1)
        out[i, :, y1 : y1 + h, x1 : x1 + w] = patch.clamp(0, 1)
    return out, labels


def train_cutpaste(
    model: Any, images: torch.Tensor, *, steps: int, batch_size: int = 16, seed: int = 0, lr: float = 0.03
) -> dict[str, float]:
    """Train ``model.net``'s stem, ``layer1`` and ``layer2`` by CutPaste on ``images`` (N x 3 x H x W, good
    ones) for ``steps`` SGD steps; returns the last step's loss and accuracy. The network is left in eval
    mode."""
    net = model.net
    device = model.pixel_mean.device
    head = nn.Linear(net.layer2[-1].conv2.out_channels, 3).to(device)
    parts = [net.conv1, net.bn1, net.layer1, net.layer2, head]
    params = [p for m in parts for p in m.parameters()]
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=1e-4)
    g = torch.Generator().manual_seed(seed)
    net.train()
    loss_v, acc = float("nan"), float("nan")
    with torch.enable_grad():
        for _ in range(int(steps)):
            idx = torch.randint(0, len(images), (batch_size,), generator=g)
            x = images[idx]
            flip = torch.rand(batch_size, generator=g) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
            xa, la = cutpaste_batch(x, g)
            xb = torch.cat([x, xa]).to(device)
            yb = torch.cat([torch.zeros(batch_size, dtype=torch.long), la]).to(device)
            h = (xb - model.pixel_mean) / model.pixel_std
            h = net.layer2(net.layer1(net.maxpool(net.relu(net.bn1(net.conv1(h))))))
            logits = head(h.mean((2, 3)))
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_v, acc = float(loss.detach()), float((logits.detach().argmax(1) == yb).float().mean())
    net.eval()
    for p in params:
        p.grad = None
    return {"loss": loss_v, "accuracy": acc}
