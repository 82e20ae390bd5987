"""``patchcore-valid``: a patch-feature memory over *unpadded* ResNet features, in two tiers.

:class:`~workbench.train.patchcore.PatchCore` reads zero-padded features, so a border patch of an unseen
image only matches the bank if some good training image had the same content at the same distance from
its border (see :mod:`workbench.train.valid_features`). Here every feature is computed without padding
(a function of its pixels only), on a stride-4 grid:

- the *outer* tier covers the whole image: the stem's features (3 x 3 cells averaged, 19 px receptive
  field) plus the cell's mean colour (``colour`` times the normalised RGB of its 8 x 8 centre): 67 values
  on a 28 x 28 grid at 128 px, cell centres 9 ... 117 px;
- the *inner* tier, where the image leaves room for ``layer1`` (51 px receptive field): the stem's group,
  ``layer1``'s group (each scaled to a mean row norm of 1 over the good patches) and the colour, 131
  values on the inner 20 x 20 cells (centres 25 ... 101 px).

Each tier has its own memory bank (greedy coreset of the good patches) and its own border-ring
calibration learnt from held-out good images (as ``patchcore-cal``: every 5th good image held out, the
nearest distances of its patches give a mean and a spread per ring of distance to the grid's border):
a patch's score is its distance as a z-score of its ring, so rings that good images leave far from the
bank (content near a real photo's edges only ever appears near a crop's border) count less. The score
grid takes the inner tier's z-scores where it has them and the outer tier's elsewhere; it is upsampled
to the input size (cell centres at their pixels, the nearest cell beyond them) and smoothed as in
``patchcore``; its maximum is the image's score.

The model fits on the un-augmented images (its registry entry's ``augment="none"``; a run that names a
preset still gets it): a memory stores what it sees, and the default anomaly augmentation (flips, a
small rotation with filled corners, brightness) only adds patches no test image has.

Measured (``benchmarks/bench_anomaly.py``, 200 images at 128 px, random weights; image AUROC / F1 /
pixel AUROC; ``patchcore-cal``, the earlier default, in brackets): ``shapes-anomaly`` 1.000 / 1.000 /
0.999 (0.915 / 0.762 / 0.992); real-photo sets ``coffee`` 0.998 / 0.938 / 0.994 (0.856), ``chelsea``
1.000 / 1.000 / 0.994 (0.862), ``astronaut`` 0.981 / 0.893 / 0.990 (0.633). A fit takes 83-441 s on
this 2-core machine (load 6-7 from other jobs; ``patchcore-cal`` 6-66 s): about 3 times the patches
(stride 4 against 8) and a bank 3 times larger.
``weights=`` loads a torchvision ResNet-18 ``state_dict`` into ``model.net`` as for ``patchcore``.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn.functional as F

from .patchcore import RINGS, PatchCore, border_rings, gaussian_blur, nearest_distances
from .valid_features import STRIDE, grid_to_pixels, valid_block, valid_stem

__all__ = ["ValidPatchCore", "patchcore_valid"]

_OUTER, _INNER = 64 + 3, 128 + 3
FIRST = 9  # the centre of outer cell 0, in input pixels


class ValidPatchCore(PatchCore):
    """Two-tier memory of unpadded patch features (see the module doc); ``model(x)`` returns
    ``(scores, maps)`` as :class:`PatchCore` does."""

    inner_bank: torch.Tensor
    inner_ring_mean: torch.Tensor
    inner_ring_std: torch.Tensor
    group_scale: torch.Tensor

    def __init__(
        self, *, coreset_ratio: float = 0.25, max_bank: int = 16384, colour: float = 0.5, seed: int = 0
    ) -> None:
        super().__init__(coreset_ratio=coreset_ratio, max_bank=max_bank, seed=seed, calibrate=True)
        self.colour = float(colour)
        self.feature_dim = _OUTER
        self.memory_bank = torch.zeros(0, _OUTER)
        self.feature_mean, self.feature_std = torch.zeros(_OUTER), torch.ones(_OUTER)
        self.register_buffer("inner_bank", torch.zeros(0, _INNER))
        self.register_buffer("inner_ring_mean", torch.zeros(RINGS))
        self.register_buffer("inner_ring_std", torch.ones(RINGS))
        self.register_buffer("group_scale", torch.ones(2))  # stem, layer1: mean row norms (good patches)
        self._inner: list[torch.Tensor] = []

    # ------------------------------------------------------------------------------------------ features
    def tiers(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features of images ``x`` in [0, 1] (groups divided by ``group_scale``): the outer
        ``N x 67 x h x w`` and the inner ``N x 131 x (h-8) x (w-8)`` grids (inner cell ``j`` is outer cell
        ``j + 4``; outer cell ``j`` is centred at ``9 + 4 j`` px)."""
        n = self.net
        z = (x - self.pixel_mean) / self.pixel_std
        s = valid_stem(n, z)
        a = F.avg_pool2d(s, 3, 1) / self.group_scale[0]  # cell j: pixels 4 j ... 4 j + 18
        h, w = a.shape[-2:]
        c = self.colour * F.avg_pool2d(z[:, :, 5:, 5:], 8, STRIDE)[:, :, :h, :w]
        b = F.avg_pool2d(valid_block(n.layer1[1], valid_block(n.layer1[0], s)), 3, 1) / self.group_scale[1]
        k = (h - b.shape[-2]) // 2
        inner = torch.cat([a[:, :, k:-k, k:-k], b, c[:, :, k:-k, k:-k]], dim=1)
        return torch.cat([a, c], dim=1), inner

    def patch_features(self, x: torch.Tensor) -> torch.Tensor:
        """The outer tier's features (``N x 67 x h x w``)."""
        return self.tiers(x)[0]

    # ------------------------------------------------------------------------------------------ fitting
    @property
    def fitted(self) -> bool:
        return self.memory_bank.shape[0] > 0 and self.inner_bank.shape[0] > 0

    @torch.no_grad()
    def observe(self, x: torch.Tensor) -> None:
        """Collect both tiers' features of a batch of good images (eval mode, as :class:`PatchCore`)."""
        was_training = self.training
        self.eval()
        try:
            outer, inner = self.tiers(x)
        finally:
            self.train(was_training)
        self._collected.append(outer.permute(0, 2, 3, 1).cpu())
        self._inner.append(inner.permute(0, 2, 3, 1).cpu())

    @torch.no_grad()
    def finalize(self) -> dict[str, Any]:
        """Both tiers' banks and ring calibrations from the collected good patches (replacing any earlier
        ones); returns counts (``patches``, ``bank``, ``inner_bank``, ``held_out``: 0 under 5 good images,
        when the rings stay uncalibrated)."""
        if not self._collected:
            raise ValueError("no good images were observed: nothing to build the memory bank from")
        outer, inner = torch.cat(self._collected), torch.cat(self._inner)  # N x h x w x D
        self._collected, self._inner = [], []
        # the stem / layer1 groups to a mean row norm of 1 (the colour keeps its weight)
        scale = torch.stack([inner[..., g : g + 64].norm(dim=-1).mean().clamp_min(1e-6) for g in (0, 64)])
        outer[..., :64] /= scale[0]
        inner[..., :64] /= scale[0]
        inner[..., 64:128] /= scale[1]
        info: dict[str, Any] = {"patches": int(outer.shape[0] * outer.shape[1] * outer.shape[2])}
        built = []
        for tier in (outer, inner):
            if len(tier) >= 5:
                built.append(self._calibrated_bank(tier))
            else:
                bank = self._coreset(tier.reshape(-1, tier.shape[-1]), self.seed)
                built.append((bank, torch.zeros(RINGS), torch.ones(RINGS), 0))
        if len(outer) < 5:
            warnings.warn(
                f"patchcore-valid: {len(outer)} good image(s) observed, under the 5 needed to hold one out; "
                "the border rings stay uncalibrated (plain nearest-patch distances)",
                stacklevel=2,
            )
        dev = self.memory_bank.device
        self.group_scale = self.group_scale * scale.to(dev)
        (bank, rm, rs, held), (ibank, irm, irs, _) = built
        self.memory_bank, self.ring_mean, self.ring_std = bank.contiguous().to(dev), rm.to(dev), rs.to(dev)
        self.inner_bank = ibank.contiguous().to(dev)
        self.inner_ring_mean, self.inner_ring_std = irm.to(dev), irs.to(dev)
        info.update({"bank": int(len(bank)), "inner_bank": int(len(ibank)), "held_out": held})
        return info

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[no-untyped-def]
        bank = state_dict.get(prefix + "inner_bank")
        if isinstance(bank, torch.Tensor):  # the bank's size is the checkpoint's
            self.inner_bank = torch.zeros_like(bank, device=self.inner_bank.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------------------------------------------------------ scoring
    def patch_scores(self, x: torch.Tensor) -> torch.Tensor:
        """Ring z-scores of the nearest-bank distances, ``N x h x w`` on the outer grid, the inner tier's
        where it has them."""
        outer, inner = self.tiers(x)
        grids = []
        for feats, bank, mean, std in (
            (outer, self.memory_bank, self.ring_mean, self.ring_std),
            (inner, self.inner_bank, self.inner_ring_mean, self.inner_ring_std),
        ):
            n, d, h, w = feats.shape
            dist = nearest_distances(feats.permute(0, 2, 3, 1).reshape(-1, d), bank).view(n, h, w)
            rings = border_rings(h, w, device=dist.device)
            grids.append((dist - mean[rings]) / std[rings])
        out, inn = grids
        k = (out.shape[-2] - inn.shape[-2]) // 2
        if k <= 0:  # an image too small for the inner tier
            return out
        out = out.clone()
        out[:, k:-k, k:-k] = inn
        return out

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps = grid_to_pixels(self.patch_scores(x), FIRST, x.shape[-2], x.shape[-1])
        maps = gaussian_blur(maps, self.blur_sigma * x.shape[-1] / 256.0)
        return maps.flatten(1).max(dim=1).values, maps


def patchcore_valid(num_classes: int, image_size: int) -> ValidPatchCore:
    """Builder for the registry (``num_classes`` is always 2 and not used; the registry asks for 64 px or
    more: the inner tier needs 51 px and a few cells)."""
    return ValidPatchCore()
