"""Predicting new images with a final model: its card, tiles over large images, PyTorch and ONNX alike."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from searchseg.errors import UserError
from searchseg.final.finalize import continue_best
from searchseg.final.model_card import InputSize, ModelCard
from searchseg.layout import FinalLayout
from searchseg.prediction.batch import predict_to_folder
from searchseg.prediction.predictor import Predictor, tile_starts
from searchseg.spaces.config import TrialConfig
from searchseg.training.engine import Trainer
from tests.conftest import save, tiny_data
from tests.final.test_finalize import stopped_trial


def binary_of(data):
    return dataclasses.replace(data, masks=(data.masks > 0).astype(np.uint8), class_names=("background", "vessel"),
                               binary=True)


@pytest.fixture(scope="module", params=["multiclass", "binary"])
def final_model(request, tmp_path_factory):
    """An experiment folder whose final model (trained a few steps on synthetic 64 px data) is exported to ONNX."""
    folder = tmp_path_factory.mktemp(request.param)
    data = tiny_data(count=8, size=64)
    data = binary_of(data) if request.param == "binary" else data
    stopped_trial(folder, data, epochs_run=1)
    continue_best(folder, folder / "state.pt", data, deadline=time.time() - 1, step_seconds=0.1, export="onnx",
                  progress=False, echo=lambda *_: None)
    return folder, data


@pytest.mark.parametrize("length, window, overlap", [(64, 64, 0.25), (65, 64, 0.25), (200, 64, 0.5), (1000, 96, 0.0),
                                                      (130, 64, 0.9)])
def test_tiles_cover_the_image_with_at_least_the_overlap_asked(length, window, overlap):
    starts = tile_starts(length, window, overlap)
    assert starts[0] == 0 and starts[-1] + window == max(length, window)
    steps = np.diff(starts)
    assert (steps > 0).all() and (steps <= max(1, int(window * (1 - overlap)))).all()


def test_an_image_of_the_training_size_is_predicted_as_the_test_split_was_evaluated(final_model):
    folder, data = final_model
    card = ModelCard.load(folder / "final")
    trainer = Trainer(TrialConfig.from_flat(card.config), data)
    trainer.model.load_state_dict(torch.load(folder / "final" / "model.pt", weights_only=True))
    test = data.splits["test"]
    model_input = trainer.prepare_images(torch.from_numpy(data.images[test]).permute(0, 3, 1, 2))
    expected = trainer.predict(test)
    for backend in ("torch", "onnx"):
        predictor = Predictor.load(folder, backend=backend)
        for image, evaluated_input in zip(data.images[test], model_input, strict=True):
            np.testing.assert_allclose(predictor.preprocess(image).transpose(2, 0, 1), evaluated_input, atol=1e-5)
        got = np.stack([predictor(image).labels for image in data.images[test]])
        assert (got != expected).mean() < 1e-3, backend  # float rounding may flip an exact tie of two logits


def test_a_large_image_is_tiled_at_the_training_scale_and_both_backends_agree(final_model):
    folder, data = final_model
    image = np.tile(data.images[data.splits["test"][0]], (3, 5, 1))[:150, :300]  # far larger than 64 px
    torch_prediction = Predictor.load(folder)(image, probabilities=True)
    onnx_prediction = Predictor.load(folder, backend="onnx")(image)
    labels = torch_prediction.labels
    assert labels.shape == (150, 300) and labels.dtype == np.uint8
    assert set(np.unique(labels)) <= set(range(len(data.class_names)))
    assert torch_prediction.working_size == (150, 300) and torch_prediction.tiles == 3 * 6
    assert (labels != onnx_prediction.labels).mean() < 1e-3
    probabilities = torch_prediction.probabilities
    channels = 1 if data.binary else len(data.class_names)
    assert probabilities.shape == (channels, 150, 300)
    if not data.binary:
        np.testing.assert_allclose(probabilities.sum(axis=0), 1.0, atol=1e-5)
        assert (probabilities.argmax(axis=0) == labels).all()
    squashed = Predictor.load(folder, resize="squash")(image)
    assert squashed.labels.shape == (150, 300) and squashed.working_size == (64, 64) and squashed.tiles == 1


def test_the_card_says_how_to_feed_the_model_and_travels_inside_the_onnx_file(final_model):
    folder, data = final_model
    card = ModelCard.load(folder / "final")
    assert card.classes.names == data.class_names and card.classes.binary == data.binary
    assert card.outputs == (1 if data.binary else len(data.class_names))
    assert card.input_size.window == 64 and card.input_size.training_image_size == (64, 64)
    assert card.preprocessing.mean == pytest.approx((123.675, 116.28, 103.53))
    assert card.data["fingerprint"] == data.fingerprint
    metrics = (folder / "final" / "metrics.json").read_text()
    assert f'"test_miou": {card.metrics["test_miou"]}' in metrics
    assert card.onnx == "model.onnx"
    from_onnx = Predictor.load(folder / "final" / "model.onnx").card
    assert from_onnx == card


def test_new_images_keep_the_typical_training_scale_and_are_never_shrunk_below_one_window():
    data = tiny_data(count=8, size=64)
    data.original_sizes = np.array([[480, 640]] * 5 + [[600, 500], [300, 300], [2000, 2000]])
    assert data.median_original_size == (480, 640)
    rule = InputSize(64, data.median_original_size)
    assert rule.working_size(480, 640) == (64, 64)  # the typical training image: exactly as in training
    assert rule.working_size(20, 30) == (64, 64)  # enlarged to the window, as training enlarged small images
    assert rule.working_size(1200, 640) == (160, 64) and rule.working_size(240, 6400) == (64, 640)
    assert tiny_data(count=8, size=64).median_original_size == (64, 64)  # decoded at its size: that size


def test_an_experiment_without_a_card_or_model_is_one_line(tmp_path, final_model):
    with pytest.raises(UserError, match="neither a searchseg experiment"):
        Predictor.load(tmp_path)
    (tmp_path / "final").mkdir()
    with pytest.raises(UserError, match="no model_card.json.*searchseg retrain"):
        Predictor.load(tmp_path)
    folder, _ = final_model
    FinalLayout(tmp_path / "final").card.write_text(FinalLayout(folder / "final").card.read_text())
    with pytest.raises(UserError, match="model.pt does not exist"):
        Predictor.load(tmp_path)
    with pytest.raises(UserError, match="model.onnx does not exist.*--export onnx"):
        Predictor.load(tmp_path, backend="onnx")
    FinalLayout(tmp_path / "final").card.write_text('{"format": "something else"}')
    with pytest.raises(UserError, match="not a searchseg-model-card/1"):
        Predictor.load(tmp_path)
    with pytest.raises(UserError, match="overlap"):
        Predictor.load(folder, overlap=1.0)
    with pytest.raises(UserError, match="unknown device 'gpu'; valid devices: auto, cpu, cuda"):
        Predictor.load(folder, device="gpu")


def test_a_folder_is_predicted_into_masks_colours_overlays_and_probabilities_despite_one_bad_file(final_model,
                                                                                               tmp_path):
    folder, data = final_model
    image = data.images[data.splits["test"][0]]
    save(tmp_path / "in" / "scene" / "small.png", image[:48, :40])
    save(tmp_path / "in" / "large.jpg", np.tile(image, (2, 3, 1)))
    (tmp_path / "in" / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    with pytest.raises(UserError, match=r"1 of 3 images could not be read .*broken.png.*predictions.csv"):
        predict_to_folder(Predictor.load(folder), [str(tmp_path / "in")], out, overlays=True, probabilities=True,
                          progress=False)
    table = pd.read_csv(out / "predictions.csv")
    assert table["error"].notna().sum() == 1
    assert table.loc[table["error"].isna(), "tiles"].tolist() == [3 * 4, 1]  # rows x columns of overlapping tiles
    mask = np.asarray(Image.open(out / "masks" / "scene" / "small.png"))
    assert mask.shape == (48, 40) and mask.dtype == np.uint8
    colour = np.asarray(Image.open(out / "colour" / "large.png"))
    assert colour.shape == (128, 192, 3)
    palette = {tuple(c) for c in ModelCard.load(folder / "final").classes.colors}
    assert {tuple(c) for c in colour.reshape(-1, 3)} <= palette
    assert np.asarray(Image.open(out / "overlays" / "large.png")).shape == (128, 192, 3)
    probabilities = np.load(out / "probabilities" / "scene" / "small.npy")
    assert probabilities.dtype == np.float16 and probabilities.shape[1:] == (48, 40)


CARD_DAMAGE = {  # what a hand-edited or hostile card holds -> the rule it breaks
    "weights outside the folder": (("weights",), "../../elsewhere/model.pt", "file names beside the card"),
    "onnx outside the folder": (("onnx",), "/etc/passwd", "file names beside the card"),
    "channels text": (("preprocessing", "channels"), "three", "channels is 1 or 3"),
    "mean of another length": (("preprocessing", "mean"), [0.5], "one number per channel"),
    "std zero": (("preprocessing", "std"), [0.0, 1.0, 1.0], "std > 0"),
    "window negative": (("input_size", "window"), -64, "window and multiple_of are positive integers"),
    "training size one number": (("input_size", "training_image_size"), [64], "two positive integers"),
    "class names a string": (("classes", "names"), "background", "a list of names"),
    "outputs zero": (("outputs",), 0, "outputs is a positive integer"),
    "config a list": (("config",), [1, 2], "are mappings"),
    "preprocessing a list": (("preprocessing",), [1, 2], "AttributeError"),
}


@pytest.mark.parametrize("damage", sorted(CARD_DAMAGE))
def test_a_malformed_model_card_is_one_line(final_model, tmp_path, damage):
    import json

    folder, _ = final_model
    keys, value, message = CARD_DAMAGE[damage]
    card = json.loads(FinalLayout(folder / "final").card.read_text())
    target = card
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value
    (tmp_path / "final").mkdir()
    FinalLayout(tmp_path / "final").card.write_text(json.dumps(card))
    with pytest.raises(UserError, match=f"model_card.json is not a readable model card.*{message}"):
        Predictor.load(tmp_path)


def test_an_output_folder_that_is_a_file_is_one_line_and_the_file_is_left_alone(final_model, tmp_path):
    folder, data = final_model
    save(tmp_path / "new.png", data.images[0])
    (tmp_path / "passwd").write_text("root:x:0:0")
    with pytest.raises(UserError, match="passwd is a file, not a folder"):
        predict_to_folder(Predictor.load(folder), [str(tmp_path / "new.png")], tmp_path / "passwd", progress=False)
    assert (tmp_path / "passwd").read_text() == "root:x:0:0"
