import pytest
import torch
from torch import nn

from searchseg.config import TrialConfig
from searchseg.engine import validate_config
from searchseg.errors import UserError
from searchseg.losses import LOSSES, register_loss
from searchseg.models import CLASSIC_ARCHS, arch_names, create_model, register_arch
from searchseg.optim import OPTIMIZERS, build_optimizer, register_optimizer
from searchseg.registry import Registry


def test_a_registry_is_filled_by_a_decorator_and_refuses_a_second_builder_under_one_name():
    shapes = Registry("shape")

    @shapes.register("square")
    def square(side):
        return side * side

    assert shapes.build("square", 3) == 9
    shapes.register("square")(square)  # the same builder again (a module imported twice): no change
    with pytest.raises(ValueError, match="shape 'square' is already registered"):
        shapes.register("square")(lambda side: 0)
    with pytest.raises(UserError, match="unknown shape 'circle'; valid shapes: square"):
        shapes.build("circle")


@pytest.fixture
def registered():
    """Registers a model, a loss and an optimizer for one test, then removes them."""
    added = []

    def add(registry, name, builder):
        registry.register(name)(builder)
        added.append((registry, name))

    yield add
    for registry, name in added:
        del registry[name]


def test_registered_names_are_built_and_validated_like_the_bundled_ones(registered):
    registered(CLASSIC_ARCHS, "one_conv", lambda in_channels, classes: nn.Conv2d(in_channels, classes, 1))
    registered(LOSSES, "plain_ce", lambda context: nn.CrossEntropyLoss(ignore_index=context.ignore_index))
    registered(OPTIMIZERS, "plain_sgd", lambda params, config: torch.optim.SGD(params, lr=config.lr))
    assert "one_conv" in arch_names()
    config = TrialConfig(arch="one_conv", loss={"plain_ce": 1.0}, optimizer="plain_sgd", image_size=64)
    validate_config(config)
    model = create_model("one_conv", in_channels=3, classes=2)
    assert model(torch.zeros(1, 3, 8, 8)).shape == (1, 2, 8, 8)
    assert isinstance(build_optimizer(model.parameters(), config), torch.optim.SGD)


def test_an_unknown_optimizer_is_refused_before_training_listing_the_valid_ones():
    with pytest.raises(UserError, match="unknown optimizer 'lion'; valid optimizers: adam, adamw, sgd"):
        validate_config(TrialConfig(optimizer="lion", image_size=64))


def test_the_package_registers_through_the_same_decorators():
    assert register_arch == CLASSIC_ARCHS.register and register_loss == LOSSES.register
    assert register_optimizer == OPTIMIZERS.register
    assert {"attention_unet", "segnet", "tv_fcn_resnet50", "tv_deeplabv3_resnet50"} <= set(CLASSIC_ARCHS)


@pytest.mark.parametrize("arch", ["tv_fcn_resnet50", "tv_deeplabv3_resnet50"])
def test_torchvision_models_give_logits_at_the_input_size(arch):
    model = create_model(arch, in_channels=3, classes=3).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 3, 64, 64)
    with pytest.raises(UserError, match="needs in_channels=3"):
        create_model(arch, in_channels=1, classes=3)
