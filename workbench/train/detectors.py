"""Detectors and instance segmenters built on torchvision's R-CNN and SSD classes.

``tiny-frcnn`` and ``tiny-maskrcnn`` put torchvision's ``FasterRCNN`` / ``MaskRCNN`` over a small
7-layer, stride-8 conv backbone with one feature map and anchors scaled to the image size. On CPU and
small images (64-256 px) they learn in minutes, where ImageNet-sized detectors without pretrained
weights barely move. The torchvision builders are there for users with pretrained weights and larger
images. ``num_classes`` counts object classes; the background class 0 is added here.
"""

from __future__ import annotations

from torch import nn

__all__ = [
    "TinyBackbone",
    "tiny_frcnn",
    "tiny_maskrcnn",
    "fasterrcnn_mobilenet_v3_large_320_fpn",
    "ssdlite320",
]


class TinyBackbone(nn.Sequential):
    """Seven 3x3 conv + BN + ReLU layers, three of them stride 2: one feature map at stride 8."""

    def __init__(self, width: int = 32, out_channels: int = 128) -> None:
        plan = [
            (3, width, 2),
            (width, width, 1),
            (width, width * 2, 2),
            (width * 2, width * 2, 1),
            (width * 2, out_channels, 2),
            (out_channels, out_channels, 1),
            (out_channels, out_channels, 1),
        ]
        layers: list[nn.Module] = []
        for cin, cout, stride in plan:
            layers += [
                nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]
        super().__init__(*layers)
        self.out_channels = out_channels


_REPRESENTATION = 256  # width of the two-layer box head (torchvision's default is 1024)


def _anchor_sizes(image_size: int) -> tuple[int, ...]:
    """Four anchor sizes from 1/16 to 1/2 of the image side (8..64 at 128 px), at least 4 px."""
    return tuple(max(4, int(round(image_size * f))) for f in (1 / 16, 1 / 8, 1 / 4, 1 / 2))


def _rcnn_kwargs(image_size: int) -> dict:
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.ops import MultiScaleRoIAlign

    return {
        "min_size": image_size,
        "max_size": image_size,
        "rpn_anchor_generator": AnchorGenerator(
            sizes=(_anchor_sizes(image_size),), aspect_ratios=((0.5, 1.0, 2.0),)
        ),
        "box_roi_pool": MultiScaleRoIAlign(featmap_names=["0"], output_size=7, sampling_ratio=1),
        "rpn_pre_nms_top_n_train": 600,
        "rpn_post_nms_top_n_train": 300,
        "rpn_pre_nms_top_n_test": 300,
        "rpn_post_nms_top_n_test": 100,
        "rpn_batch_size_per_image": 128,
        "box_batch_size_per_image": 64,
        "box_score_thresh": 0.01,
    }


def _box_head(backbone: TinyBackbone, num_classes: int) -> dict:
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead

    return {
        "box_head": TwoMLPHead(backbone.out_channels * 7 * 7, _REPRESENTATION),
        "box_predictor": FastRCNNPredictor(_REPRESENTATION, num_classes + 1),
    }


def tiny_frcnn(num_classes: int, image_size: int) -> nn.Module:
    from torchvision.models.detection import FasterRCNN

    backbone = TinyBackbone()
    return FasterRCNN(backbone, **_box_head(backbone, num_classes), **_rcnn_kwargs(image_size))


def tiny_maskrcnn(num_classes: int, image_size: int) -> nn.Module:
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
    from torchvision.ops import MultiScaleRoIAlign

    backbone = TinyBackbone()
    # pasting masks back into the image dominates inference on CPU: keep fewer, surer detections
    kwargs = {**_rcnn_kwargs(image_size), "box_score_thresh": 0.05, "box_detections_per_img": 50}
    return MaskRCNN(
        backbone,
        **_box_head(backbone, num_classes),
        mask_roi_pool=MultiScaleRoIAlign(featmap_names=["0"], output_size=14, sampling_ratio=1),
        mask_head=MaskRCNNHeads(backbone.out_channels, (64, 64), 1),
        mask_predictor=MaskRCNNPredictor(64, 64, num_classes + 1),
        **kwargs,
    )


def fasterrcnn_mobilenet_v3_large_320_fpn(num_classes: int, image_size: int) -> nn.Module:
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_320_fpn as build

    return build(
        weights=None,
        weights_backbone=None,
        num_classes=num_classes + 1,
        min_size=image_size,
        max_size=image_size,
        box_score_thresh=0.01,
    )


def ssdlite320(num_classes: int, image_size: int) -> nn.Module:
    """SSDlite with a MobileNetV3-Large backbone; it always resizes its input to 320 x 320."""
    from torchvision.models.detection import ssdlite320_mobilenet_v3_large as build

    return build(weights=None, weights_backbone=None, num_classes=num_classes + 1, score_thresh=0.01)
