"""What ``test_distributed`` starts under torchrun: the ``workbench`` command line, plus a test-only model.

``mlp-test`` has no BatchNorm and no dropout, so one step of 2 processes x 16 images computes what one
process computes on those 32 images (DistributedDataParallel averages the gradients): the test can
compare the two runs number for number. Arguments: one ``workbench`` command line per run, separated by
``--next`` (several runs in one torchrun job reuse its process group).
"""

from __future__ import annotations

import sys

from torch import nn

from workbench.train.models import ModelSpec, register_model


def mlp(num_classes: int, image_size: int) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(), nn.Linear(3 * image_size * image_size, 64), nn.ReLU(), nn.Linear(64, num_classes)
    )


MLP = ModelSpec("mlp-test", "classification", mlp, 16, "test-only MLP: no BatchNorm, no dropout")


def commands(argv: list[str]) -> list[list[str]]:
    runs: list[list[str]] = [[]]
    for arg in argv:
        if arg == "--next":
            runs.append([])
        else:
            runs[-1].append(arg)
    return [r for r in runs if r]


if __name__ == "__main__":
    register_model(MLP)
    from workbench.cli import main

    for command in commands(sys.argv[1:]):
        code = main(command)
        if code:
            sys.exit(code)
