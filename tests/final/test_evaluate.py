"""Exported models: the same logits as PyTorch, at the size they were exported at and at any other."""

from __future__ import annotations

import onnxruntime
import pytest
import torch

from searchseg.final.evaluate import export_model
from searchseg.training.models import create_model


@pytest.mark.parametrize("arch", ["unet", "segnet", "attention_unet"])
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_every_architecture_exports_with_any_height_and_width(arch, fmt, tmp_path):
    torch.manual_seed(0)
    model = create_model(arch, "resnet18", "none", 3, 4)
    path = tmp_path / f"model.{fmt}"
    difference, scale = export_model(model, fmt, path, torch.randn(1, 3, 64, 64), metadata={"note": "kept"})
    assert difference < 1e-4 * max(1.0, scale)
    if fmt == "onnx":
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert session.get_modelmeta().custom_metadata_map["note"] == "kept"
        assert session.run(None, {"image": torch.randn(2, 3, 96, 160).numpy()})[0].shape == (2, 4, 96, 160)
