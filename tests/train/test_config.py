"""TrainConfig validation and the optimizer / schedule registries."""

from __future__ import annotations

import pytest
import torch

from workbench.errors import UnknownNameError, ValidationError
from workbench.train.config import (
    OPTIMIZERS,
    SCHEDULES,
    TrainConfig,
    build_optimizer,
    build_schedule,
    register_optimizer,
    resolve_device,
)

BAD = [
    ("epochs", 0),
    ("epochs", 1.5),
    ("batch_size", True),
    ("lr", 0),
    ("lr", float("nan")),
    ("weight_decay", -1),
    ("seed", -1),
    ("image_size", 4),
    ("patience", 0),
    ("overfit_patience", 0),
    ("num_workers", -1),
    ("max_steps_per_epoch", 0),
    ("grad_clip", 0.0),
    ("augment", 3),
    ("threads", 0),
]


@pytest.mark.parametrize(("field", "value"), BAD, ids=[f"{f}={v!r}" for f, v in BAD])
def test_bad_values_name_the_field(field, value):
    with pytest.raises(ValidationError) as info:
        TrainConfig(**{field: value})
    assert info.value.field == field.split(".")[0]


@pytest.mark.parametrize(
    ("field", "value", "listed"),
    [
        ("optimizer", "lbfgs", "adamw"),
        ("schedule", "cyclic", "plateau"),
        ("device", "tpu", "cuda"),
        ("model", "yolo", "tiny-frcnn"),
    ],
)
def test_unknown_names_list_the_valid_ones(field, value, listed):
    with pytest.raises(UnknownNameError, match=listed):
        TrainConfig(**{field: value})


def test_round_trip_and_unknown_keys():
    cfg = TrainConfig(
        model="small-cnn", epochs=3, augment={"version": 1, "transforms": []}, extra={"note": "x"}
    )
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValidationError, match="colour"):
        TrainConfig.from_dict({"colour": "red"})


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_builds(name):
    model = torch.nn.Linear(2, 2)
    opt = build_optimizer(model.parameters(), TrainConfig(optimizer=name, lr=0.01, weight_decay=0.001))
    assert opt.param_groups[0]["lr"] == 0.01


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_every_schedule_builds(name):
    opt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
    sched = build_schedule(opt, TrainConfig(schedule=name, epochs=4), "max")
    assert (sched is None) == (name == "none")


def test_register_optimizer_and_device():
    register_optimizer("sgd-plain", lambda params, cfg: torch.optim.SGD(params, lr=cfg.lr))
    try:
        assert TrainConfig(optimizer="sgd-plain").optimizer == "sgd-plain"
    finally:
        OPTIMIZERS.pop("sgd-plain")
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ValidationError, match="cuda"):
            resolve_device("cuda")
