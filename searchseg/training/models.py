"""Model registry: name -> builder, over segmentation-models-pytorch plus models registered with
``@register_arch("name")`` on a function ``(in_channels, classes) -> nn.Module``: the project's classic ones,
torchvision's FCN and DeepLabV3 (ResNet-50, the seed notebooks' baselines; smp has no FCN) and any plugin's.

``create_model(arch, encoder, encoder_weights, in_channels, classes)`` fails at once, listing the
valid names, for an unknown architecture or encoder. ``encoder_weights`` is ``none``, ``imagenet``
(downloaded once into the Hugging Face cache) or a path to a local encoder state dict.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import segmentation_models_pytorch as smp
import torch
from torch import nn

from searchseg.errors import UserError, unknown_name
from searchseg.training.classic import AttentionUNet, SegNet
from searchseg.training.registry import Registry

# Lower-case names users type -> smp architecture names.
SMP_ARCHS = {
    "unet": "Unet",
    "unetplusplus": "UnetPlusPlus",
    "fpn": "FPN",
    "pspnet": "PSPNet",
    "deeplabv3": "DeepLabV3",
    "deeplabv3plus": "DeepLabV3Plus",
    "linknet": "Linknet",
    "manet": "MAnet",
    "pan": "PAN",
    "upernet": "UPerNet",
    "segformer": "Segformer",
}
# Models that take no smp encoder (the config's encoder is ignored for them).
CLASSIC_ARCHS: Registry[Callable[[int, int], nn.Module]] = Registry("architecture")
register_arch = CLASSIC_ARCHS.register
# base: channels of the first stage, doubling per stage (arch.segnet.base): the width a latency search varies
register_arch("attention_unet", base=32)(AttentionUNet)
register_arch("segnet", base=32)(SegNet)
WEIGHT_HOST = ("huggingface.co", 443)
# Smallest working size at which an architecture's deepest features are still larger than 1x1 pixel.
MIN_IMAGE_SIZE = {"pan": 128}


class TorchvisionSegmentation(nn.Module):
    """A torchvision segmentation model, whose forward returns a dict, as a model that returns the logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)["out"]


def _torchvision(builder_name: str) -> Callable[[int, int], nn.Module]:
    def build(in_channels: int, classes: int) -> nn.Module:
        if in_channels != 3:
            raise UserError(f"torchvision's {builder_name} needs in_channels=3, got {in_channels}; "
                            "set in_channels=3 (greyscale is repeated)")
        from torchvision.models import segmentation  # only when built: torchvision's import is slow

        # encoder and encoder_weights apply to smp models only: these train from scratch, with no download
        return TorchvisionSegmentation(getattr(segmentation, builder_name)(weights=None, weights_backbone=None,
                                                                           num_classes=classes, aux_loss=False))

    return build


register_arch("tv_fcn_resnet50")(_torchvision("fcn_resnet50"))
register_arch("tv_deeplabv3_resnet50")(_torchvision("deeplabv3_resnet50"))


def arch_names() -> list[str]:
    """Every architecture name, those registered by plugins included."""
    return sorted([*SMP_ARCHS, *CLASSIC_ARCHS])


def list_encoders() -> list[str]:
    return sorted(smp.encoders.get_encoder_names())


def check_model_names(arch: str, encoder: str) -> None:
    """Fail at once on an unknown architecture or encoder, listing the valid ones."""
    if arch not in SMP_ARCHS and arch not in CLASSIC_ARCHS:
        raise unknown_name("architecture", arch, arch_names())
    if arch in SMP_ARCHS and not encoder.startswith("tu-") and encoder not in smp.encoders.encoders:
        raise unknown_name("encoder", encoder, list_encoders())


def check_image_size(arch: str, image_size: int) -> None:
    """smp encoders downsample 32x: other sizes fail deep inside the model with an unhelpful message."""
    if image_size % 32:
        raise UserError(f"image_size={image_size} must be a multiple of 32 (e.g. {max(32, image_size // 32 * 32)})")
    if image_size < MIN_IMAGE_SIZE.get(arch, 32):
        raise UserError(f"arch {arch!r} needs image_size >= {MIN_IMAGE_SIZE[arch]}, got {image_size}")


def _weights_reachable(timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection(WEIGHT_HOST, timeout=timeout):
            return True
    except OSError:
        return False


def create_model(arch: str, encoder: str = "resnet18", encoder_weights: str = "none", in_channels: int = 3,
                 classes: int = 1, options: dict | None = None) -> nn.Module:
    """Build a segmentation model; ``options`` are a registered architecture's own parameters.
    Shape: ``(B, in_channels, H, W) -> (B, classes, H, W)``."""
    check_model_names(arch, encoder)
    if arch in CLASSIC_ARCHS:
        return CLASSIC_ARCHS.build(arch, in_channels, classes, options=options)

    local_weights = None
    if encoder_weights not in ("none", "imagenet"):
        local_weights = Path(encoder_weights).expanduser()
        if not local_weights.is_file():
            raise UserError(f"encoder_weights {encoder_weights!r} is neither 'none', 'imagenet' nor an existing file")
    download = encoder_weights == "imagenet"
    if download and os.environ.get("HF_HUB_OFFLINE", "") in ("", "0") and not _weights_reachable():
        raise UserError(
            f"cannot reach {WEIGHT_HOST[0]} to download imagenet weights for encoder {encoder!r}; "
            "use --set encoder_weights=none, or a local file (--set encoder_weights=/path/to/encoder.pth), "
            "or set HF_HUB_OFFLINE=1 to use weights already in the Hugging Face cache"
        )
    weights: str | bool | None = None
    if download:
        weights = True if encoder.startswith("tu-") else "imagenet"
    try:
        model = smp.create_model(SMP_ARCHS[arch], encoder_name=encoder, encoder_weights=weights,
                                 in_channels=in_channels, classes=classes)
    except (OSError, KeyError) as err:
        if not download:
            raise
        raise UserError(
            f"imagenet weights for encoder {encoder!r} could not be loaded ({type(err).__name__}); "
            "use --set encoder_weights=none or a local weights file"
        ) from None
    if local_weights is not None:
        _load_encoder_weights(model, local_weights)
    return model


def _load_encoder_weights(model: nn.Module, path: Path) -> None:
    state: Any
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:  # tensors only: a pickle payload in the file is refused, never run
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"encoder weights {path} are not a state dict of tensors ({reason[:200]}); pass a .pth "
                        "saved with torch.save(encoder.state_dict()) or a .safetensors file") from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    try:
        model.encoder.load_state_dict(state, strict=False)  # type: ignore[union-attr]  # smp models have .encoder
    except RuntimeError as err:
        raise UserError(f"encoder weights {path} do not fit this encoder: {str(err).splitlines()[0]}") from None
