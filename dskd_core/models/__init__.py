"""Model zoos: ``create_model(name, num_classes, zoo=...)`` and the names each knows.

Every model returns ``(logits, Features)``. The ``cifar`` zoo has the layer names of the
published RepDistiller/mdistiller CIFAR checkpoints, the ``imagenet`` zoo torchvision's, so
those load with ``strict=True``.
"""

from dskd_core.models import (  # noqa: F401  (register)
    imagenet,
    mobilenetv2,
    resnet,
    resnetv2,
    shufflenetv1,
    shufflenetv2,
    vgg,
    wrn,
)
from dskd_core.models.base import Features, ZooModel
from dskd_core.models.registry import (
    ZOOS,
    create_model,
    list_aliases,
    list_models,
    register_alias,
    register_model,
    resolve_model_name,
)

__all__ = [
    "ZOOS",
    "Features",
    "ZooModel",
    "create_model",
    "list_aliases",
    "list_models",
    "register_alias",
    "register_model",
    "resolve_model_name",
]
