"""Anomaly detection by patch-feature memory (PatchCore style): nothing is trained by gradient descent.

One pass over the good training images collects, for every image position, a patch feature: ResNet-18
activations averaged over their 3 x 3 neighbourhood, by default ``layer1`` (pooled to ``layer2``'s stride-8
grid) and ``layer2`` concatenated (192 values; ``layers="23"``: ``layer2`` + ``layer3``, 384 values, as
PatchCore uses with ImageNet weights). A greedy k-centre coreset of them (``coreset_ratio`` of the patches,
at most ``max_bank``) is kept as the *memory bank*. A test patch's anomaly score is its Euclidean distance
to the nearest bank entry; the patch scores of an image, upsampled to the input size and smoothed
(Gaussian, sigma 4 px at 256 px), are its *anomaly map*, and the map's maximum is the image's score.
``standardize=True`` divides each feature by its spread over the good patches first (worse on
``shapes-anomaly``: image AUROC 0.84 against 0.95, so off by default).

``calibrate=True`` (the ``patchcore-cal`` model; the default is now ``patchcore-valid``, see
:mod:`workbench.train.patchcore_valid`) learns from the good images how far a
*normal* patch lies from the bank at each distance from the image border: every 5th good image (seeded) is
held out, the bank is built from the others, the held-out patches' nearest distances give a mean and a
spread per *ring* (feature cells 0, 1, 2 and 3+ from the nearest border; stride 8), and the held-out
patches' own coreset then joins the bank. A patch's score is its distance as a z-score of its ring. Without
it, the zero padding of the random backbone makes border patches of an unseen crop look far from every
bank entry: on crops of real photos 10 of the 10 highest-scoring good test images peak within 12 px of the
border, and calibration lifts image AUROC from 0.80 to 0.85 (``coffee``) and 0.84 to 0.89 (``chelsea``)
(``shapes-anomaly``: unchanged, 0.92-0.93); see ``benchmarks/bench_anomaly.py``. ``patchcore-cal`` also
keeps a 25% coreset (``patchcore``: 10%): with calibration that measured 0.933 / 0.882 / 0.932 against
0.925 / 0.837 / 0.905 (``shapes-anomaly`` / ``coffee`` / ``chelsea``), for about twice the fit time.

Backbone: ``torchvision.models.resnet18`` with random weights, or the weights of a local torchvision
ResNet-18 ``state_dict`` given as ``weights=`` (``model.net`` holds the ResNet, so the registry's
:func:`~workbench.train.models.load_weights` matches the file's keys). Random-init features of this kind
separate the defects of ``shapes-anomaly`` far better than the autoencoder does, with the
shallow layers (``layer2`` + ``layer3`` of a random ResNet reached image AUROC 0.61 there, ``layer1`` +
``layer2`` 0.95); see ``benchmarks/bench_anomaly.py``.

Everything the scorer needs lives in buffers (``memory_bank``, ``feature_mean``, ``feature_std``), so a
checkpoint is a plain state dict of tensors and loads with ``weights_only=True``; the bank's size is taken
from the state dict when it is loaded.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "PatchCore",
    "patchcore",
    "patchcore_calibrated",
    "patchcore_cutpaste",
    "nearest_distances",
    "greedy_coreset",
    "gaussian_blur",
    "border_rings",
]

RINGS = 4  # rings 0, 1, 2 and 3+ feature cells from the border

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def nearest_distances(queries: torch.Tensor, bank: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Euclidean distance of every row of ``queries`` (Q x D) to its nearest row of ``bank`` (B x D).

    Computed as ``sqrt(|q|^2 - 2 q.b + |b|^2)`` (clamped at 0) over bank chunks: no Q x B x D tensor.
    """
    if bank.shape[0] == 0:
        raise ValueError("the memory bank is empty: fit the model on good images first")
    q2 = (queries * queries).sum(dim=1, keepdim=True)
    best = None
    for start in range(0, bank.shape[0], chunk):
        b = bank[start : start + chunk]
        d2 = q2 - 2.0 * queries @ b.T + (b * b).sum(dim=1)[None, :]
        m = d2.min(dim=1).values
        best = m if best is None else torch.minimum(best, m)
    assert best is not None
    return best.clamp_min(0.0).sqrt()


def greedy_coreset(features: torch.Tensor, size: int, *, proj_dim: int = 128, seed: int = 0) -> torch.Tensor:
    """Indices of a greedy k-centre coreset of ``features`` (N x D): each step adds the row farthest from
    those chosen so far (distances in a seeded random projection to ``proj_dim`` dimensions, as PatchCore
    does). The first row chosen is row 0; ``size >= N`` returns all rows."""
    n = features.shape[0]
    if size >= n:
        return torch.arange(n)
    g = torch.Generator().manual_seed(seed)
    if features.shape[1] > proj_dim:
        proj = torch.randn(features.shape[1], proj_dim, generator=g) / math.sqrt(proj_dim)
        z = features.float().cpu() @ proj
    else:
        z = features.float().cpu()
    chosen = torch.empty(size, dtype=torch.long)
    chosen[0] = 0
    sq = (z * z).sum(dim=1)
    dist = sq - 2.0 * (z @ z[0]) + sq[0]
    for i in range(1, size):
        j = int(torch.argmax(dist))
        chosen[i] = j
        dist = torch.minimum(dist, sq - 2.0 * (z @ z[j]) + sq[j])
    return chosen


def gaussian_blur(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``N x H x W`` maps (reflect padding); ``sigma <= 0`` returns them as is."""
    if sigma <= 0:
        return maps
    radius = max(1, int(math.ceil(3 * sigma)))
    radius = min(radius, maps.shape[-1] - 1, maps.shape[-2] - 1)
    if radius < 1:
        return maps
    t = torch.arange(-radius, radius + 1, dtype=maps.dtype, device=maps.device)
    k = torch.exp(-(t * t) / (2 * sigma * sigma))
    k = k / k.sum()
    x = maps[:, None]
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), k.view(1, 1, -1, 1))
    return x[:, 0]


def border_rings(h: int, w: int, device: torch.device | None = None) -> torch.Tensor:
    """``h x w`` long tensor: each cell's distance to the nearest border, capped at ``RINGS - 1``."""
    r = torch.arange(h, device=device)[:, None]
    c = torch.arange(w, device=device)[None, :]
    near = torch.minimum(torch.minimum(r, h - 1 - r), torch.minimum(c, w - 1 - c))
    return near.clamp(max=RINGS - 1)


class PatchCore(nn.Module):
    """Patch-feature memory bank over a ResNet-18 (see the module doc).

    ``model(x)`` returns ``(scores, maps)``: one score per image and an ``N x H x W`` anomaly map at the
    input size. Fitting: :meth:`observe` good batches, then :meth:`finalize` (the trainer's anomaly task
    does both in its single epoch).
    """

    pixel_mean: torch.Tensor
    pixel_std: torch.Tensor
    memory_bank: torch.Tensor
    feature_mean: torch.Tensor
    feature_std: torch.Tensor
    ring_mean: torch.Tensor
    ring_std: torch.Tensor
    single_pass = True  # the trainer runs one epoch: more passes would only add augmented views

    def __init__(
        self,
        *,
        coreset_ratio: float = 0.1,
        max_bank: int = 16384,
        blur_sigma: float = 4.0,
        seed: int = 0,
        layers: str = "12",
        standardize: bool = False,
        calibrate: bool = False,
        ssl_steps: int = 0,
    ) -> None:
        super().__init__()
        from torchvision.models import resnet18

        g = torch.random.fork_rng()
        with g:
            torch.manual_seed(seed)
            self.net = resnet18(weights=None)
        self.net.fc = nn.Identity()  # not used; keeps a torchvision state_dict's fc.* keys out
        self.coreset_ratio = float(coreset_ratio)
        self.max_bank = int(max_bank)
        self.blur_sigma = float(blur_sigma)
        self.seed = int(seed)
        self.layers = layers
        self.standardize = bool(standardize)
        self.calibrate = bool(calibrate)
        self.ssl_steps = int(ssl_steps)
        self._images: list[torch.Tensor] = []  # with ssl_steps: the good images, until finalize
        if layers not in ("12", "23"):
            raise ValueError(f"layers must be '12' or '23', got {layers!r}")
        self.feature_dim = 64 + 128 if layers == "12" else 128 + 256
        self.register_buffer("pixel_mean", torch.tensor(_MEAN).view(1, 3, 1, 1))
        self.register_buffer("pixel_std", torch.tensor(_STD).view(1, 3, 1, 1))
        self.register_buffer("memory_bank", torch.zeros(0, self.feature_dim))
        self.register_buffer("feature_mean", torch.zeros(self.feature_dim))
        self.register_buffer("feature_std", torch.ones(self.feature_dim))
        # per-ring mean and spread of a good patch's distance (identity until calibrated)
        self.register_buffer("ring_mean", torch.zeros(RINGS))
        self.register_buffer("ring_std", torch.ones(RINGS))
        self._collected: list[torch.Tensor] = []  # N x h x w x D per observed batch

    # ------------------------------------------------------------------------------------------ features
    def patch_features(self, x: torch.Tensor) -> torch.Tensor:
        """Raw patch features ``N x D x h x w`` (``h, w`` = input size / 8)."""
        n = self.net
        x = (x - self.pixel_mean) / self.pixel_std
        x = n.maxpool(n.relu(n.bn1(n.conv1(x))))
        f1 = n.layer1(x)
        raw2 = n.layer2(f1)
        f2 = F.avg_pool2d(raw2, 3, stride=1, padding=1, count_include_pad=False)
        if self.layers == "12":
            f1 = F.avg_pool2d(f1, 3, stride=1, padding=1, count_include_pad=False)
            f1 = F.avg_pool2d(f1, 2, stride=2)
            return torch.cat([f1, f2], dim=1)
        f3 = F.avg_pool2d(n.layer3(raw2), 3, stride=1, padding=1, count_include_pad=False)
        f3 = F.interpolate(f3, size=f2.shape[-2:], mode="bilinear", align_corners=False)
        return torch.cat([f2, f3], dim=1)

    def _standardized(self, feats: torch.Tensor) -> torch.Tensor:
        """``N x D x h x w`` -> ``(N*h*w) x D`` standardised rows."""
        rows = feats.permute(0, 2, 3, 1).reshape(-1, feats.shape[1])
        return (rows - self.feature_mean) / self.feature_std

    # ------------------------------------------------------------------------------------------ fitting
    @property
    def fitted(self) -> bool:
        return self.memory_bank.shape[0] > 0

    @torch.no_grad()
    def observe(self, x: torch.Tensor) -> None:
        """Collect the patch features of a batch of good images (kept on the CPU until :meth:`finalize`).

        The backbone runs in eval mode (BatchNorm's running statistics, never the batch's, and never
        updated), also when the trainer has put the model in train mode: the features must be those that
        scoring computes."""
        if self.ssl_steps > 0:  # the backbone trains first (in finalize): keep the images
            self._images.append(x.detach().cpu())
            return
        was_training = self.training
        self.eval()
        try:
            feats = self.patch_features(x)
        finally:
            self.train(was_training)
        self._collected.append(feats.permute(0, 2, 3, 1).cpu())

    def _coreset(self, z: torch.Tensor, seed: int) -> torch.Tensor:
        """The greedy coreset of rows ``z`` (``coreset_ratio`` of them, at most ``max_bank``)."""
        size = max(1, min(self.max_bank, int(math.ceil(len(z) * self.coreset_ratio))))
        if len(z) > 8 * size:  # greedy selection is O(N * size): start from a seeded random subset
            g = torch.Generator().manual_seed(seed)
            z = z[torch.randperm(len(z), generator=g)[: 8 * size]]
        return z[greedy_coreset(z, size, seed=seed)]

    def _calibrated_bank(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        """From ``N x h x w x D`` good patch features (``N >= 5``): every 5th image (seeded) held out, the
        coreset of the others as the bank, the held-out patches' nearest distances per border ring (their
        mean and spread), then the held-out patches' own coreset added to the bank. Returns the bank, the
        ring means and spreads and how many images were held out."""
        n = len(z)
        ring_mean, ring_std = torch.zeros(RINGS), torch.ones(RINGS)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))
        held, kept = perm[: n // 5], perm[n // 5 :]
        z_kept = z[kept].reshape(-1, z.shape[-1])
        z_held = z[held]  # k x h x w x D
        bank = self._coreset(z_kept, self.seed)
        d = nearest_distances(z_held.reshape(-1, z_held.shape[-1]), bank).view(z_held.shape[:-1])
        rings = border_rings(d.shape[1], d.shape[2]).expand_as(d)
        for k in range(RINGS):
            sel = d[rings == k]
            if sel.numel() >= 2:
                ring_mean[k], ring_std[k] = sel.mean(), sel.std().clamp_min(1e-6)
        bank = torch.cat([bank, self._coreset(z_held.reshape(-1, z_held.shape[-1]), self.seed + 1)])
        return bank, ring_mean, ring_std, int(len(held))

    @torch.no_grad()
    def finalize(self) -> dict[str, Any]:
        """Turn the collected features into the memory bank (replacing any earlier bank); returns counts
        (``patches``, ``bank``; with ``calibrate``: ``held_out`` images, or 0 under 5 good images, when
        the rings stay uncalibrated)."""
        ssl: dict[str, float] = {}
        if self._images:
            from .cutpaste import train_cutpaste

            images, self._images = torch.cat(self._images), []
            ssl = train_cutpaste(self, images, steps=self.ssl_steps, seed=self.seed)
            was_training = self.training
            self.eval()
            try:
                dev = self.pixel_mean.device
                for start in range(0, len(images), 32):
                    feats = self.patch_features(images[start : start + 32].to(dev))
                    self._collected.append(feats.permute(0, 2, 3, 1).cpu())
            finally:
                self.train(was_training)
        if not self._collected:
            raise ValueError("no good images were observed: nothing to build the memory bank from")
        maps = torch.cat(self._collected)  # N x h x w x D
        self._collected = []
        rows = maps.reshape(-1, maps.shape[-1])
        if self.standardize:
            mean, std = rows.mean(dim=0), rows.std(dim=0).clamp_min(1e-6)
        else:
            mean, std = torch.zeros(rows.shape[1]), torch.ones(rows.shape[1])
        info: dict[str, Any] = {"patches": int(len(rows))}
        ring_mean, ring_std = torch.zeros(RINGS), torch.ones(RINGS)
        n = len(maps)
        if self.calibrate and n >= 5:
            bank, ring_mean, ring_std, info["held_out"] = self._calibrated_bank((maps - mean) / std)
        else:
            bank = self._coreset((rows - mean) / std, self.seed)
            if self.calibrate:
                info["held_out"] = 0
                warnings.warn(
                    f"patchcore-cal: {n} good image(s) observed, under the 5 needed to hold one out; "
                    "the border rings stay uncalibrated (plain nearest-patch distances)",
                    stacklevel=2,
                )
        dev = self.memory_bank.device
        self.feature_mean = mean.to(dev)
        self.feature_std = std.to(dev)
        self.ring_mean = ring_mean.to(dev)
        self.ring_std = ring_std.to(dev)
        self.memory_bank = bank.contiguous().to(dev)
        info["bank"] = int(len(bank))
        if ssl:
            info["ssl_steps"] = self.ssl_steps
            info.update({f"ssl_{k}": round(v, 4) for k, v in ssl.items()})
        return info

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[no-untyped-def]
        bank = state_dict.get(prefix + "memory_bank")
        if isinstance(bank, torch.Tensor):  # the bank's size is the checkpoint's
            self.memory_bank = torch.zeros_like(bank, device=self.memory_bank.device)
        for key in ("ring_mean", "ring_std"):  # a checkpoint from before calibration: the identity
            state_dict.setdefault(prefix + key, getattr(self, key).detach().clone())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------------------------------------------------------ scoring
    def patch_scores(self, x: torch.Tensor) -> torch.Tensor:
        """Nearest-bank-entry distance per patch (with ``calibrate``: as a z-score of its border ring):
        ``N x h x w``."""
        feats = self.patch_features(x)
        n, _, h, w = feats.shape
        d = nearest_distances(self._standardized(feats), self.memory_bank).view(n, h, w)
        rings = border_rings(h, w, device=d.device)
        return (d - self.ring_mean[rings]) / self.ring_std[rings]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        patches = self.patch_scores(x)
        maps = F.interpolate(patches[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        maps = gaussian_blur(maps, self.blur_sigma * x.shape[-1] / 256.0)
        return maps.flatten(1).max(dim=1).values, maps


def patchcore(num_classes: int, image_size: int) -> nn.Module:
    """Builder for the registry; ``num_classes`` is always 2 (good / anomalous) and not used."""
    return PatchCore()


def patchcore_cutpaste(num_classes: int, image_size: int) -> nn.Module:
    """``patchcore`` over a backbone trained here by CutPaste on the good images (150 steps; see
    :mod:`workbench.train.cutpaste`)."""
    return PatchCore(ssl_steps=150)


def patchcore_calibrated(num_classes: int, image_size: int) -> nn.Module:
    """``patchcore`` with border-ring calibration and a 25% coreset (see the module doc): the anomaly
    default before ``patchcore-valid``."""
    return PatchCore(calibrate=True, coreset_ratio=0.25)
