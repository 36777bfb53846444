import time

import pytest
import torch

from searchseg.errors import UserError
from searchseg.training.models import MIN_IMAGE_SIZE, arch_names, check_image_size, create_model


class TestEveryArchitecture:
    """One small forward and backward pass per registered architecture."""

    @pytest.mark.parametrize("arch", arch_names())
    def test_forward_backward(self, arch):
        torch.manual_seed(0)
        size = MIN_IMAGE_SIZE.get(arch, 64)
        model = create_model(arch, "resnet18", "none", in_channels=3, classes=4)
        out = model(torch.randn(2, 3, size, size))
        assert out.shape == (2, 4, size, size)
        out.mean().backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad]
        assert grads and all(g is not None for g in grads[:3])

    @pytest.mark.parametrize("arch", ["unet", "segnet", "attention_unet"])
    def test_single_channel_binary(self, arch):
        model = create_model(arch, "resnet18", "none", in_channels=1, classes=1)
        assert model(torch.randn(2, 1, 64, 64)).shape == (2, 1, 64, 64)


def test_unknown_architecture_lists_valid_names():
    with pytest.raises(UserError, match="valid architectures: attention_unet, deeplabv3"):
        create_model("unet3000", "resnet18")


def test_unknown_encoder_lists_valid_names():
    with pytest.raises(UserError, match="valid encoders: .*resnet18"):
        create_model("unet", "resnet9000")


def test_imagenet_weights_without_network_fail_fast_with_the_way_out(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    started = time.perf_counter()
    with pytest.raises(UserError, match="encoder_weights=none"):
        create_model("unet", "resnet18", "imagenet")
    assert time.perf_counter() - started < 10


def test_local_weights_file_is_loaded(tmp_path):
    source = create_model("unet", "resnet18", "none", classes=2)
    path = tmp_path / "encoder.pth"
    torch.save(source.encoder.state_dict(), path)
    model = create_model("unet", "resnet18", str(path), classes=2)
    assert torch.equal(model.encoder.conv1.weight, source.encoder.conv1.weight)
    with pytest.raises(UserError, match="neither 'none', 'imagenet' nor an existing file"):
        create_model("unet", "resnet18", str(tmp_path / "missing.pth"))


def test_image_size_rules():
    check_image_size("unet", 64)
    with pytest.raises(UserError, match="multiple of 32"):
        check_image_size("unet", 100)
    with pytest.raises(UserError, match="pan.*>= 128"):
        check_image_size("pan", 64)
