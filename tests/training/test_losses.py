import math

import numpy as np
import pytest
import torch

from searchseg.data.balance import median_frequency_weights
from searchseg.errors import UserError
from searchseg.training.losses import LOSSES, LossContext, LossMix

MULTI = LossContext(binary=False, num_classes=2, ignore_index=255, class_weights=(1.0, 3.0))
BINARY = LossContext(binary=True, num_classes=2, ignore_index=255, class_weights=(1.0, 3.0))
# Two pixels: one of class 0 predicted with logits (2, 0), one of class 1 with logits (0, 1).
LOGITS = torch.tensor([[2.0, 0.0], [0.0, 1.0]]).T.reshape(1, 2, 1, 2)
TARGET = torch.tensor([[[0, 1]]])


def p_correct(a, b):
    return math.exp(a) / (math.exp(a) + math.exp(b))


def test_cross_entropy_by_hand():
    expected = -(math.log(p_correct(2, 0)) + math.log(p_correct(1, 0))) / 2
    assert LossMix({"ce": 1}, MULTI)(LOGITS, TARGET).item() == pytest.approx(expected, rel=1e-5)


def test_weighted_cross_entropy_by_hand():
    # torch normalises by the sum of the target pixels' weights.
    expected = -(1 * math.log(p_correct(2, 0)) + 3 * math.log(p_correct(1, 0))) / 4
    assert LossMix({"weighted_ce": 1}, MULTI)(LOGITS, TARGET).item() == pytest.approx(expected, rel=1e-5)


def test_dice_by_hand():
    probs = torch.softmax(LOGITS, 1)[0, :, 0]  # (classes, pixels)
    one_hot = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    per_class = 1 - 2 * (probs * one_hot).sum(1) / (probs + one_hot).sum(1)
    assert LossMix({"dice": 1}, MULTI)(LOGITS, TARGET).item() == pytest.approx(per_class.mean().item(), rel=1e-4)


def test_jaccard_by_hand():
    probs = torch.softmax(LOGITS, 1)[0, :, 0]
    one_hot = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    intersection = (probs * one_hot).sum(1)
    per_class = 1 - intersection / ((probs + one_hot).sum(1) - intersection)
    assert LossMix({"jaccard": 1}, MULTI)(LOGITS, TARGET).item() == pytest.approx(per_class.mean().item(), rel=1e-4)


def test_tversky_with_equal_weights_is_dice():
    mix = {name: LossMix({name: 1}, MULTI)(LOGITS, TARGET).item() for name in ("tversky", "dice")}
    assert mix["tversky"] == pytest.approx(mix["dice"], rel=1e-5)


def test_focal_by_hand():
    """smp's multi-class focal loss: per class a sigmoid one-vs-rest focal term over pixels; then the class mean."""
    gamma = MULTI.focal_gamma

    def term(logit, positive):
        p = 1 / (1 + math.exp(-logit))
        pt = p if positive else 1 - p
        return -((1 - pt) ** gamma) * math.log(pt)

    class0 = (term(2, True) + term(0, False)) / 2
    class1 = (term(0, False) + term(1, True)) / 2
    assert LossMix({"focal": 1}, MULTI)(LOGITS, TARGET).item() == pytest.approx((class0 + class1) / 2, rel=1e-4)


def test_lovasz_is_zero_for_a_confident_correct_prediction():
    logits = torch.tensor([[20.0, -20.0], [-20.0, 20.0]]).T.reshape(1, 2, 1, 2)
    assert LossMix({"lovasz": 1}, MULTI)(logits, TARGET).item() == pytest.approx(0.0, abs=1e-4)


@pytest.mark.parametrize("ctx", [MULTI, BINARY], ids=["multiclass", "binary"])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_ignored_pixels_do_not_matter(name, ctx):
    torch.manual_seed(0)
    channels = 1 if ctx.binary else 2
    logits = torch.randn(2, channels, 8, 8)
    target = torch.randint(0, 2, (2, 8, 8))
    target[:, :4] = 255
    changed = logits.clone()
    changed[:, :, :4] = torch.randn_like(changed[:, :, :4]) * 10
    loss = LossMix({name: 1}, ctx)
    assert loss(logits, target).item() == pytest.approx(loss(changed, target).item(), rel=1e-5, abs=1e-6)


def test_binary_bce_by_hand():
    logits = torch.tensor([[[[1.0, -2.0]]]])
    target = torch.tensor([[[1, 0]]])
    expected = (math.log(1 + math.exp(-1)) + math.log(1 + math.exp(-2))) / 2
    assert LossMix({"ce": 1}, BINARY)(logits, target).item() == pytest.approx(expected, rel=1e-5)


def test_mix_is_the_weighted_sum():
    parts = {name: LossMix({name: 1}, MULTI)(LOGITS, TARGET).item() for name in ("ce", "dice")}
    mixed = LossMix({"ce": 0.3, "dice": 0.7, "focal": 0.0}, MULTI)
    assert list(mixed.weights) == ["ce", "dice"]
    assert mixed(LOGITS, TARGET).item() == pytest.approx(0.3 * parts["ce"] + 0.7 * parts["dice"], rel=1e-5)


def test_unknown_loss_lists_valid_names():
    with pytest.raises(UserError, match="unknown loss 'hinge'; valid losses: ce, dice"):
        LossMix({"hinge": 1}, MULTI)


def test_median_frequency_weights():
    weights = median_frequency_weights(np.array([0.5, 0.25, 0.25, 0.0]))
    assert weights == pytest.approx((0.5, 1.0, 1.0, 1.0))
