import pytest
import torch
from torch import nn

from searchseg.errors import UserError
from searchseg.spaces.config import TrialConfig
from searchseg.training.augment import PRESETS, build_augmentation
from searchseg.training.engine import validate_config
from searchseg.training.losses import LOSSES, LossContext, LossMix, register_loss
from searchseg.training.models import CLASSIC_ARCHS, arch_names, create_model, register_arch
from searchseg.training.optim import OPTIMIZERS, build_optimizer, register_optimizer
from searchseg.training.registry import Registry
from searchseg.training.schedules import SCHEDULES, lr_factor


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

    def add(registry, name, builder, **params):
        registry.register(name, **params)(builder)
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


class Scaled(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, logits, target):
        return self.factor * nn.functional.cross_entropy(logits, target)


def test_an_entry_s_own_parameters_come_from_namespaced_config_keys(registered):
    registered(LOSSES, "scaled_ce", lambda context, factor: Scaled(factor), factor=1.0)
    registered(CLASSIC_ARCHS, "wide_conv", lambda in_channels, classes, width: nn.Sequential(
        nn.Conv2d(in_channels, width, 1), nn.Conv2d(width, classes, 1)), width=4)
    registered(SCHEDULES, "halved", lambda progress, floor: max(floor, 1.0 - progress), floor=0.5)
    registered(PRESETS, "flip", lambda strength, size, ignore, channels, p: [__import__("albumentations")
                                                                                .HorizontalFlip(p=p)], p=0.5)
    config = TrialConfig.from_flat({"arch": "wide_conv", "loss.scaled_ce": 1.0, "loss.scaled_ce.factor": 3,
                                    "arch.wide_conv.width": 6, "scheduler": "halved", "augment": "flip",
                                    "augment.flip.p": 0.9, "image_size": 64})
    validate_config(config)
    context = LossContext(False, 2, 255, (1.0, 1.0))
    mix = LossMix(config.loss, context, {"scaled_ce": config.options_for("loss", "scaled_ce")})
    assert mix.losses["scaled_ce"].factor == 3
    assert LossMix({"scaled_ce": 1.0}, context).losses["scaled_ce"].factor == 1.0  # the declared default
    model = create_model("wide_conv", in_channels=3, classes=2, options=config.options_for("arch", "wide_conv"))
    assert model[0].out_channels == 6
    assert lr_factor(90, 100, 0, "halved") == 0.5 and lr_factor(10, 100, 0, "halved", {"floor": 0.95}) == 0.95
    [flip] = build_augmentation("flip", 1.0, 64, options=config.options_for("augment", "flip"))
    assert flip.p == 0.9
    assert TrialConfig.from_flat(config.to_flat()) == config  # the namespaced keys survive config.yaml


def test_a_parameter_an_entry_does_not_declare_is_refused_listing_its_parameters(registered):
    registered(LOSSES, "scaled_ce", lambda context, factor: Scaled(factor), factor=1.0)
    with pytest.raises(UserError, match="loss 'scaled_ce' has no parameter 'gamma'; its parameters: factor"):
        validate_config(TrialConfig.from_flat({"loss.scaled_ce.gamma": 2.0, "image_size": 64}))
    with pytest.raises(UserError, match="unknown loss 'nope'"):
        validate_config(TrialConfig.from_flat({"loss.nope.gamma": 2.0, "image_size": 64}))
    with pytest.raises(UserError, match="smp architectures take no parameters here"):
        validate_config(TrialConfig.from_flat({"arch.unet.depth": 3, "image_size": 64}))
    with pytest.raises(UserError, match="unknown learning-rate schedule 'steps'; valid learning-rate schedules: "
                                        "constant, cosine, onecycle, poly"):
        validate_config(TrialConfig(scheduler="steps", image_size=64))
