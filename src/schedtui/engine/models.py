"""The preset models: an MLP for small tabular data and a ResNet-9 for CIFAR-10.

Every model puts its dropout in `nn.Dropout` modules and its normalisation in
BatchNorm modules, so the `dropout` and `bn_momentum` knobs find them. torch only;
must not import textual/rich.
"""

from __future__ import annotations

import torch
from torch import nn

from schedtui.errors import UserError

_ACT = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


def mlp(in_features: int, n_out: int, hidden: list[int], dropout: float, activation: str, batchnorm: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, h)] + ([nn.BatchNorm1d(h)] if batchnorm else []) + [_ACT[activation](), nn.Dropout(dropout)]
        width = h
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


def _conv_bn(c_in: int, c_out: int, bn_momentum: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out, momentum=bn_momentum),
        nn.ReLU(inplace=True),
    )


class Residual(nn.Module):
    def __init__(self, *blocks: nn.Module):
        super().__init__()
        self.body = nn.Sequential(*blocks)

    def forward(self, x):
        return x + self.body(x)


class Scale(nn.Module):
    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


def resnet9(n_classes: int, width: int, dropout: float, bn_momentum: float) -> nn.Sequential:
    """The DAWNBench ResNet-9 (prep, three stages, two residual blocks): ~94% on CIFAR-10 in a few dozen epochs."""
    w, m = width, bn_momentum
    return nn.Sequential(
        _conv_bn(3, w, m),
        _conv_bn(w, 2 * w, m),
        nn.MaxPool2d(2),
        Residual(_conv_bn(2 * w, 2 * w, m), _conv_bn(2 * w, 2 * w, m)),
        _conv_bn(2 * w, 4 * w, m),
        nn.MaxPool2d(2),
        _conv_bn(4 * w, 8 * w, m),
        nn.MaxPool2d(2),
        Residual(_conv_bn(8 * w, 8 * w, m), _conv_bn(8 * w, 8 * w, m)),
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(8 * w, n_classes, bias=False),
        Scale(0.125),
    )


def build_model(cfg: dict, input_shape: tuple, n_classes: int) -> nn.Module:
    kind = cfg["kind"]
    if kind == "mlp":
        n_in = 1
        for d in input_shape:
            n_in *= d
        return mlp(n_in, n_classes, cfg["hidden"], cfg["dropout"], cfg["activation"], cfg.get("batchnorm", False))
    if kind == "resnet9":
        if tuple(input_shape)[0] != 3:
            raise UserError(f"model resnet9 needs 3-channel images, the data has shape {tuple(input_shape)}")
        return resnet9(n_classes, cfg["width"], cfg["dropout"], cfg["bn_momentum"])
    raise UserError(f"model.kind: unknown model {kind!r}; valid: mlp, resnet9")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["build_model", "count_parameters", "mlp", "resnet9", "torch"]
