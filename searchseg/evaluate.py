"""Looking at and shipping a trained model: prediction overlays and ONNX / TorchScript export."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from searchseg.errors import UserError
from searchseg.io_utils import atomic_write
from searchseg.palette import colourise

EXPORT_FORMATS = ("onnx", "torchscript")


def _save_png(image: np.ndarray, path: Path) -> None:
    Image.fromarray(image).save(path, format="PNG")


def write_overlays(images: np.ndarray, masks: np.ndarray, predictions: np.ndarray, names: list[str],
                   class_colors, ignore_index: int, folder: Path) -> list[Path]:
    """One PNG per image: image | ground truth | prediction, side by side."""
    paths = []
    for image, mask, prediction, name in zip(images, masks, predictions, names, strict=True):
        rgb = image if image.shape[2] == 3 else np.repeat(image, 3, axis=2)
        panel = np.concatenate([rgb, colourise(mask, class_colors, ignore_index),
                                colourise(prediction, class_colors, ignore_index)], axis=1)
        path = folder / f"{name.replace('/', '__')}.png"  # an item's name is its relative path
        atomic_write(path, partial(_save_png, panel))
        paths.append(path)
    return paths


def export_model(model: nn.Module, fmt: str, path: Path, example: torch.Tensor) -> tuple[float, float]:
    """Write a deployable model; return the largest absolute difference of its logits from PyTorch's, and the
    largest absolute PyTorch logit (the scale that difference is to be read against)."""
    if fmt not in EXPORT_FORMATS:
        raise UserError(f"unknown export format {fmt!r}; valid formats: {', '.join(EXPORT_FORMATS)}")
    model = model.eval().float().to(memory_format=torch.contiguous_format).cpu()
    example = example.float().cpu()
    with torch.no_grad():
        expected = model(example).numpy()
    if fmt == "torchscript":
        with torch.no_grad():
            scripted = torch.jit.trace(model, example)
        atomic_write(path, lambda tmp: scripted.save(str(tmp)))
        with torch.no_grad():
            got = torch.jit.load(str(path))(example).numpy()
        return float(np.abs(got - expected).max()), float(np.abs(expected).max())
    try:
        import onnxruntime
    except ImportError:
        raise UserError("ONNX export needs onnx and onnxruntime: pip install onnx onnxruntime") from None
    atomic_write(path, lambda tmp: torch.onnx.export(
        model, (example,), str(tmp), dynamo=False, input_names=["image"], output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": example.numpy()})[0]
    return float(np.abs(got - expected).max()), float(np.abs(expected).max())
