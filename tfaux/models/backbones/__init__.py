"""Backbone families, one file each; importing this package registers them all."""

from tfaux.models.backbones import (  # noqa: F401
    alexnet,
    efficientnet,
    googlenet,
    mobilenetv2,
    resnet,
    resnext,
    small,
    wide_resnet,
)
