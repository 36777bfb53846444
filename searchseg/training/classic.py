"""Classic architectures the seed notebooks use that segmentation-models-pytorch lacks.

- Attention U-Net (Oktay et al., 2018): a U-Net whose skip connections pass through additive
  attention gates driven by the coarser decoder signal.
- SegNet (Badrinarayanan et al., 2017): a VGG-style encoder whose max-pooling indices drive the
  decoder's unpooling, so boundaries are restored without learned upsampling.

Widths start at ``base`` channels (32 by default, half the papers' 64) so they train on a CPU.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(conv_bn_relu(in_channels, out_channels), conv_bn_relu(out_channels, out_channels))


class AttentionGate(nn.Module):
    """Weights a skip feature map by ``sigmoid(psi(relu(W_g g + W_x x)))``, g being the decoder signal."""

    def __init__(self, gate_channels: int, skip_channels: int, inner_channels: int) -> None:
        super().__init__()
        self.gate = nn.Sequential(nn.Conv2d(gate_channels, inner_channels, 1), nn.BatchNorm2d(inner_channels))
        self.skip = nn.Sequential(nn.Conv2d(skip_channels, inner_channels, 1), nn.BatchNorm2d(inner_channels))
        self.psi = nn.Sequential(nn.Conv2d(inner_channels, 1, 1), nn.BatchNorm2d(1), nn.Sigmoid())

    def forward(self, gate: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        attention = self.psi(F.relu(self.gate(gate) + self.skip(skip)))
        return skip * attention


class AttentionUNet(nn.Module):
    """Attention U-Net. Shape: ``(B, in_channels, H, W) -> (B, classes, H, W)``, H and W divisible by 16."""

    def __init__(self, in_channels: int = 3, classes: int = 1, base: int = 32) -> None:
        super().__init__()
        widths = [base * 2**i for i in range(5)]
        self.encoders = nn.ModuleList([double_conv(in_channels, widths[0])])
        self.encoders.extend(double_conv(widths[i], widths[i + 1]) for i in range(4))
        self.ups = nn.ModuleList()
        self.gates = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for i in reversed(range(4)):
            self.ups.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                          conv_bn_relu(widths[i + 1], widths[i])))
            self.gates.append(AttentionGate(widths[i], widths[i], max(widths[i] // 2, 1)))
            self.decoders.append(double_conv(2 * widths[i], widths[i]))
        self.head = nn.Conv2d(widths[0], classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for depth, encoder in enumerate(self.encoders):
            x = encoder(x if depth == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for up, gate, decoder in zip(self.ups, self.gates, self.decoders, strict=True):
            x = up(x)
            skip = skips.pop()
            x = decoder(torch.cat([gate(x, skip), x], dim=1))
        return self.head(x)


def _unpool(x: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """``F.max_unpool2d`` of a 2x2 stride-2 pool, written as a scatter: torch's own cannot be traced for ONNX
    export (its output-size check meets a traced tensor), and this one exports with any height and width."""
    batch, channels, height, width = x.shape
    plane = x.new_zeros(batch, channels, height * 2 * width * 2)
    return plane.scatter(2, indices.flatten(2), x.flatten(2)).view(batch, channels, height * 2, width * 2)


class SegNet(nn.Module):
    """SegNet with pooling-index unpooling. Shape: ``(B, C, H, W) -> (B, classes, H, W)``, H, W divisible by 32."""

    # Convolutions per stage, as in VGG16: 2, 2, 3, 3, 3.
    STAGE_DEPTHS = (2, 2, 3, 3, 3)

    def __init__(self, in_channels: int = 3, classes: int = 1, base: int = 32) -> None:
        super().__init__()
        widths = [base, base * 2, base * 4, base * 8, base * 8]
        self.encoders = nn.ModuleList()
        previous = in_channels
        for width, depth in zip(widths, self.STAGE_DEPTHS, strict=True):
            layers = [conv_bn_relu(previous, width)] + [conv_bn_relu(width, width) for _ in range(depth - 1)]
            self.encoders.append(nn.Sequential(*layers))
            previous = width
        self.decoders = nn.ModuleList()
        for stage in reversed(range(5)):
            out_width = widths[stage - 1] if stage > 0 else widths[0]
            depth = self.STAGE_DEPTHS[stage]
            layers = [conv_bn_relu(widths[stage], widths[stage]) for _ in range(depth - 1)]
            layers.append(conv_bn_relu(widths[stage], out_width))
            self.decoders.append(nn.Sequential(*layers))
        self.head = nn.Conv2d(widths[0], classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        indices = []
        for encoder in self.encoders:
            x = encoder(x)
            x, index = F.max_pool2d(x, 2, 2, return_indices=True)
            indices.append(index)
        for decoder in self.decoders:
            x = _unpool(x, indices.pop())
            x = decoder(x)
        return self.head(x)
