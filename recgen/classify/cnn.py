"""A small ResNet-style CNN for image recognition, sized by `CNNConfig`.

Layout (ResNet-9 of the DAWNBench CIFAR-10 entries, made narrow for 2 CPU cores; airbench, arXiv 2404.00498):

    stem:   conv3x3(in_channels -> stem_width) -> BN -> ReLU                      full resolution
    stage:  conv3x3(-> width) -> maxpool 2 -> BN -> ReLU, then `blocks` residual blocks
            (conv-BN-ReLU-conv-BN-ReLU + identity)                               1/2, 1/4, ... resolution
    head:   global max pool -> dropout -> linear -> * logit_scale

Global pooling makes the net accept any input size (28x28 Fashion-MNIST, 32x32 CIFAR, 1 or 3 channels).
It takes images in [0, 1]: the stem BatchNorm normalises the input, so callers need no dataset statistics.
Every stage conv costs the same FLOPs (channels double as the area quarters): 28x28 input, default config,
~17 M multiply-adds per image, ~1,400 training images/s on 2 CPU cores (fp32, channels_last).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass
class CNNConfig:
    in_channels: int = 1  # 1 for grayscale (Fashion-MNIST), 3 for RGB (CIFAR-10)
    num_classes: int = 10  # size of the output logits
    stem_width: int = 16  # channels of the full-resolution stem conv
    widths: tuple[int, ...] = (32, 64, 128)  # channels of each stage; every stage halves the resolution
    blocks: tuple[int, ...] = (1, 0, 1)  # residual blocks per stage, after its downsampling conv
    dropout: float = 0.0  # dropout probability before the linear head
    logit_scale: float = 0.125  # multiplies the logits (ResNet-9 trick: soft early softmax at a large lr)
    bn_momentum: float = 0.1  # BatchNorm running-statistics momentum (PyTorch convention)

    def __post_init__(self):
        self.widths, self.blocks = tuple(self.widths), tuple(self.blocks)
        if len(self.widths) != len(self.blocks):
            raise ValueError(f"widths {self.widths} and blocks {self.blocks} need one entry per stage")
        if not self.widths or min(self.widths) < 1 or min(self.blocks) < 0:
            raise ValueError(f"widths must be channel counts >= 1 and blocks counts >= 0, got {self.widths} and "
                             f"{self.blocks}")


class ConvBN(nn.Sequential):
    """conv3x3 (no bias: the BN shift replaces it) -> [maxpool 2] -> BN -> ReLU."""

    def __init__(self, c_in: int, c_out: int, pool: bool = False, bn_momentum: float = 0.1):
        layers = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)]
        if pool:
            layers.append(nn.MaxPool2d(2))
        layers += [nn.BatchNorm2d(c_out, momentum=bn_momentum), nn.ReLU(inplace=True)]
        super().__init__(*layers)


class Residual(nn.Module):
    """x + f(x), f = two ConvBN at constant width (post-activation, as in ResNet-9)."""

    def __init__(self, c: int, bn_momentum: float = 0.1):
        super().__init__()
        self.f = nn.Sequential(ConvBN(c, c, bn_momentum=bn_momentum), ConvBN(c, c, bn_momentum=bn_momentum))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.f(x)


class Stage(nn.Sequential):
    """Downsampling ConvBN to `c_out` channels, then `blocks` Residual blocks."""

    def __init__(self, c_in: int, c_out: int, blocks: int, bn_momentum: float = 0.1):
        super().__init__(ConvBN(c_in, c_out, pool=True, bn_momentum=bn_momentum),
                         *[Residual(c_out, bn_momentum) for _ in range(blocks)])


class CNN(nn.Module):
    def __init__(self, cfg: CNNConfig):
        super().__init__()
        self.cfg = cfg
        self.stem = ConvBN(cfg.in_channels, cfg.stem_width, bn_momentum=cfg.bn_momentum)
        chans = (cfg.stem_width,) + cfg.widths
        self.stages = nn.Sequential(*[Stage(chans[i], chans[i + 1], cfg.blocks[i], cfg.bn_momentum)
                                      for i in range(len(cfg.widths))])
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(chans[-1], cfg.num_classes, bias=False)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) in [0, 1] -> (B, widths[-1], H / 2^S, W / 2^S) feature map of the last stage."""
        # channels-last: oneDNN's convolutions are much faster on it than on NCHW colour batches
        return self.stages(self.stem(x.contiguous(memory_format=torch.channels_last)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x).amax(dim=(2, 3))  # (B, C) global max pool
        return self.head(self.dropout(f)) * self.cfg.logit_scale  # (B, num_classes)


def build_cnn(cfg: CNNConfig) -> nn.Module:
    return CNN(cfg)


def target_layer(model: nn.Module) -> nn.Module:
    """The module whose output Grad-CAM weighs: the last conv block (last stage's final block, post-ReLU)."""
    model = getattr(model, "_orig_mod", model)  # unwrap torch.compile
    return model.stages[-1][-1]
