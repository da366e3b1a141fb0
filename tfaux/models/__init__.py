"""Models: a backbone registry, heads, and the multi-output builder."""

from tfaux.models.build import build, primary_classifier
from tfaux.models.layers import SelectiveBatchNorm, batch_norm, selective_batch_norm
from tfaux.models.registry import (
    create_backbone,
    feature_stride,
    list_backbones,
    register_backbone,
)

__all__ = [
    "SelectiveBatchNorm",
    "batch_norm",
    "build",
    "create_backbone",
    "feature_stride",
    "list_backbones",
    "primary_classifier",
    "register_backbone",
    "selective_batch_norm",
]
