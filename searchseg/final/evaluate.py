"""Looking at and shipping a trained model: prediction overlays and ONNX / TorchScript export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from searchseg.errors import UserError
from searchseg.io_utils import atomic_write, atomic_write_png
from searchseg.options import EXPORT_FORMATS
from searchseg.palette import as_rgb, colourise


def write_overlays(images: np.ndarray, masks: np.ndarray, predictions: np.ndarray, names: list[str],
                   class_colors, ignore_index: int, folder: Path) -> list[Path]:
    """One PNG per image: image | ground truth | prediction, side by side."""
    paths = []
    for image, mask, prediction, name in zip(images, masks, predictions, names, strict=True):
        panel = np.concatenate([as_rgb(image), colourise(mask, class_colors, ignore_index),
                                colourise(prediction, class_colors, ignore_index)], axis=1)
        path = folder / f"{name.replace('/', '__')}.png"  # an item's name is its relative path
        atomic_write_png(path, panel)
        paths.append(path)
    return paths


def export_model(model: nn.Module, fmt: str, path: Path, example: torch.Tensor,
                 metadata: dict[str, str] | None = None) -> tuple[float, float]:
    """Write a deployable model that takes any height and width (ONNX: input ``image``, output ``logits``, with
    ``metadata`` in its properties); return the largest absolute difference of its logits from PyTorch's on
    ``example`` and on an input twice as wide, and the largest absolute PyTorch logit (the scale that difference
    is to be read against)."""
    if fmt not in EXPORT_FORMATS:
        raise UserError(f"unknown export format {fmt!r}; valid formats: {', '.join(EXPORT_FORMATS)}")
    model = model.eval().float().to(memory_format=torch.contiguous_format).cpu()
    example = example.float().cpu()
    inputs = (example, torch.cat([example, example.flip(-1)], dim=-1))
    with torch.no_grad():
        expected = [model(x).numpy() for x in inputs]
    if fmt == "torchscript":
        with torch.no_grad():
            scripted = torch.jit.trace(model, example)
        atomic_write(path, lambda tmp: scripted.save(str(tmp)))
        loaded = torch.jit.load(str(path))
        with torch.no_grad():
            got = [loaded(x).numpy() for x in inputs]
    else:
        got = _export_onnx(model, path, example, inputs, metadata or {})
    difference = max(float(np.abs(g - e).max()) for g, e in zip(got, expected, strict=True))
    return difference, max(float(np.abs(e).max()) for e in expected)


def _export_onnx(model: nn.Module, path: Path, example: torch.Tensor, inputs: tuple[torch.Tensor, ...],
                 metadata: dict[str, str]) -> list[np.ndarray]:
    try:
        import onnx
        import onnxruntime
    except ImportError:
        raise UserError("ONNX export needs onnx and onnxruntime: pip install 'searchseg[export]'") from None
    sizes = {0: "batch", 2: "height", 3: "width"}

    def write(tmp: Path) -> None:
        torch.onnx.export(model, (example,), str(tmp), dynamo=False, input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": sizes, "logits": sizes})
        exported = onnx.load(str(tmp))
        for key, value in metadata.items():
            exported.metadata_props.add(key=key, value=value)
        onnx.save(exported, str(tmp))

    atomic_write(path, write)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [session.run(None, {"image": x.numpy()})[0] for x in inputs]
