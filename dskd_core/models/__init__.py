"""CIFAR model zoo: ``create_model(name, num_classes)`` and the names it knows.

Every model returns ``(logits, Features)`` and has the layer names of the published
RepDistiller/mdistiller CIFAR checkpoints, so those load with ``strict=True``.
"""

from dskd_core.models import mobilenetv2, resnet, resnetv2, shufflenetv1, shufflenetv2, vgg, wrn  # noqa: F401  (register)
from dskd_core.models.base import Features, ZooModel
from dskd_core.models.registry import create_model, list_models, register_model

__all__ = ["Features", "ZooModel", "create_model", "list_models", "register_model"]
