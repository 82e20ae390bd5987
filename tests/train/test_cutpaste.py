"""CutPaste self-supervision (workbench.train.cutpaste): what the augmentation changes, that training moves
only the layers PatchCore reads, and that the patchcore-cutpaste model builds its bank on trained features."""

from __future__ import annotations

import numpy as np
import torch

from workbench.train.cutpaste import cutpaste_batch
from workbench.train.models import build_model
from workbench.train.patchcore import PatchCore


def test_each_copy_differs_from_its_original_in_one_rectangle_only():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(24, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    keep = x.clone()
    out, labels = cutpaste_batch(x, g)
    assert torch.equal(x, keep)  # the originals are untouched
    assert set(labels.tolist()) == {1, 2} and out.shape == x.shape
    for i in range(len(x)):
        diff = (out[i] != x[i]).any(dim=0).numpy()
        ys, xs = np.nonzero(diff)
        assert len(ys), i  # something was pasted
        box = np.zeros_like(diff)
        box[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = True
        assert not (diff & ~box).any()
        h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
        if labels[i] == 2:  # a scar: a thin strip
            assert min(h, w) <= 4, (h, w)
    again, labels2 = cutpaste_batch(x, torch.Generator().manual_seed(0))
    assert torch.equal(again, out) and torch.equal(labels, labels2)  # seeded


def test_training_moves_the_read_layers_only_and_the_bank_uses_them():
    torch.manual_seed(0)
    model = PatchCore(ssl_steps=3).eval()
    before = {k: v.clone() for k, v in model.net.state_dict().items()}
    x = torch.rand(6, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    model.observe(x[:3])
    model.observe(x[3:])
    info = model.finalize()
    assert info["ssl_steps"] == 3 and info["patches"] == 6 * 8 * 8 and np.isfinite(info["ssl_loss"])
    after = model.net.state_dict()
    moved = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert moved and moved <= {"conv1", "bn1", "layer1", "layer2"}, moved
    assert "layer1" in moved and "layer2" in moved
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith(("layer3", "layer4")))
    assert not model.net.training
    with torch.no_grad():  # the bank holds the trained network's features of the good images
        feats = model.patch_features(x).permute(0, 2, 3, 1).reshape(-1, model.feature_dim)
    d = torch.cdist(model.memory_bank.double(), feats.double()).min(dim=1).values
    assert float(d.max()) < 1e-3 * float(feats.norm(dim=1).mean())  # equal up to float rounding


def test_weights_then_cutpaste_is_still_a_state_dict_checkpoint(tmp_path):
    model = build_model("patchcore-cutpaste", 2, image_size=64)
    assert model.ssl_steps == 150
    state = model.state_dict()
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    again = build_model("patchcore-cutpaste", 2, image_size=64)
    again.load_state_dict(state)
