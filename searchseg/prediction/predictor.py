"""A trained model applied to new images of any size, with the preprocessing its model card records.

An image is resized to its working size (``InputSize.working_size``: the typical training scale, never below the
window), covered by overlapping window-sized tiles (sliding-window inference, as MMSegmentation's ``slide`` mode
and nnU-Net do; one tile when it fits), the tiles' logits averaged, and the logits resized back to the image's own
size before the class is taken.
An image the size of a training image is therefore predicted exactly as the test split was evaluated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from searchseg.data.io import resize_image
from searchseg.errors import UserError
from searchseg.final.model_card import ONNX_METADATA_KEY, ModelCard
from searchseg.layout import ExperimentLayout, FinalLayout
from searchseg.options import BACKENDS, RESIZE_RULES
from searchseg.spaces.config import DEVICES
from searchseg.training.checkpoints import load_state
from searchseg.training.metrics import predict_labels

LOCAL_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")  # in this order, where installed


@dataclass
class Prediction:
    """Shape: ``labels`` ``(H, W)`` uint8 class indices at the image's own size; ``probabilities`` ``(C, H, W)``
    float32 (softmax, or the foreground's sigmoid for a binary model) when asked for."""

    labels: np.ndarray
    probabilities: np.ndarray | None
    working_size: tuple[int, int]  # the size the image was resized to before tiling
    tiles: int


def tile_starts(length: int, window: int, overlap: float) -> list[int]:
    """Starts of windows covering ``length`` pixels, neighbours overlapping by at least ``overlap`` of a window,
    spread evenly so the first starts at 0 and the last ends at ``length``."""
    if length <= window:
        return [0]
    stride = max(1, int(window * (1 - overlap)))
    count = math.ceil((length - window) / stride) + 1
    return np.linspace(0, length - window, count).round().astype(int).tolist()


class Predictor:
    """Load once, predict many: ``Predictor.load("results/EXP")(image)`` -> ``Prediction``.

    ``backend`` "torch" runs ``final/model.pt``; "onnx" runs the exported ``final/model.onnx`` with ONNX Runtime
    (or any ``.onnx`` file that carries a searchseg model card in its metadata).
    """

    def __init__(self, card: ModelCard, run_tiles, device: str, batch_size: int = 8, overlap: float = 0.25,
                 resize: str = "auto") -> None:
        if not 0 <= overlap < 1:
            raise UserError(f"overlap must be in [0, 1), got {overlap}")
        if resize not in RESIZE_RULES:
            raise UserError(f"unknown resize rule {resize!r}; valid rules: {', '.join(RESIZE_RULES)}")
        if batch_size < 1:
            raise UserError(f"batch size must be >= 1, got {batch_size}")
        self.card, self.run_tiles, self.device = card, run_tiles, device
        self.batch_size, self.overlap, self.resize = batch_size, overlap, resize
        self.mean = np.asarray(card.preprocessing.mean, np.float32)
        self.std = np.asarray(card.preprocessing.std, np.float32)

    @classmethod
    def load(cls, source: str | Path, backend: str = "torch", device: str = "auto", **settings) -> Predictor:
        """``source``: an experiment folder, its ``final/`` folder, or an ``.onnx`` file with a model card."""
        source = Path(source)
        if backend not in BACKENDS:
            raise UserError(f"unknown backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
        if device not in DEVICES:
            raise UserError(f"unknown device {device!r}; valid devices: {', '.join(DEVICES)}")
        if source.suffix == ".onnx":
            card, onnx_path = _card_from_onnx(source), source
        else:
            final = source if FinalLayout(source).card.is_file() else ExperimentLayout(source).final().path
            if not final.is_dir():
                raise UserError(f"{source} is neither a searchseg experiment folder nor its final/ folder")
            card = ModelCard.load(final)
            onnx_path = final / (card.onnx or "model.onnx")
        if backend == "onnx" or source.suffix == ".onnx":
            if not onnx_path.is_file():
                raise UserError(f"{onnx_path} does not exist; export it with searchseg retrain "
                                f"{onnx_path.parent.parent} --export onnx, or use --backend torch")
            run_tiles, where = _onnx_runner(onnx_path)
        else:
            run_tiles, where = _torch_runner(card, final, device)
        return cls(card, run_tiles, where, **settings)

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """``(H, W, C)`` uint8 -> ``(h, w, C)`` float32 at its working size, normalised."""
        height, width = image.shape[:2]
        window = self.card.input_size.window
        working = self.card.input_size.working_size(height, width) if self.resize == "auto" else (window, window)
        return (resize_image(image, working).astype(np.float32) - self.mean) / self.std

    def __call__(self, image: np.ndarray, probabilities: bool = False) -> Prediction:
        """Predict one ``(H, W, C)`` uint8 image (as ``searchseg.data.io.read_image`` decodes it)."""
        height, width = image.shape[:2]
        window = self.card.input_size.window
        normalised = self.preprocess(image)
        working = normalised.shape[:2]
        starts = [(top, left) for top in tile_starts(working[0], window, self.overlap)
                  for left in tile_starts(working[1], window, self.overlap)]
        logit_sum = np.zeros((self.card.outputs, *working), np.float32)
        counts = np.zeros(working, np.float32)
        for first in range(0, len(starts), self.batch_size):
            chunk = starts[first:first + self.batch_size]
            tiles = np.stack([normalised[top:top + window, left:left + window] for top, left in chunk])
            logits = self.run_tiles(np.ascontiguousarray(tiles.transpose(0, 3, 1, 2)))
            for (top, left), tile_logits in zip(chunk, logits, strict=True):
                logit_sum[:, top:top + window, left:left + window] += tile_logits
                counts[top:top + window, left:left + window] += 1
        logits = torch.from_numpy(logit_sum / counts)
        logits = F.interpolate(logits[None], size=(height, width), mode="bilinear", align_corners=False)[0]
        labels = predict_labels(logits[None])[0]
        probs = None
        if probabilities:
            probs = (torch.sigmoid(logits) if self.card.classes.binary else torch.softmax(logits, dim=0)).numpy()
        return Prediction(labels.to(torch.uint8).numpy(), probs, (working[0], working[1]), len(starts))


def _torch_runner(card: ModelCard, final: Path, device: str):
    from searchseg.spaces.config import TrialConfig
    from searchseg.training.engine import resolve_device
    from searchseg.training.models import create_model
    from searchseg.training.plugins import load_plugins

    load_plugins(card.config.get("plugins"))
    config = TrialConfig.from_flat(card.config)
    model = create_model(card.arch, card.encoder, "none", card.preprocessing.channels, card.outputs,
                         options=config.options_for("arch", card.arch))
    weights = final / card.weights
    if not weights.is_file():
        raise UserError(f"{weights} does not exist; run searchseg retrain {final.parent} to train the final model")
    model.load_state_dict(load_state(weights))
    target = resolve_device(device)
    model = model.eval().to(target)
    autocast = target.type == "cuda" and config.amp  # as the test split was evaluated

    @torch.no_grad()
    def run_tiles(tiles: np.ndarray) -> np.ndarray:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            return model(torch.from_numpy(tiles).to(target)).float().cpu().numpy()

    return run_tiles, str(target)


def _onnx_session(path: Path):
    try:
        import onnxruntime
    except ImportError:
        raise UserError("the onnx backend needs onnxruntime: pip install 'searchseg[export]'") from None
    try:
        providers = [p for p in LOCAL_PROVIDERS if p in onnxruntime.get_available_providers()]
        return onnxruntime.InferenceSession(str(path), providers=providers)
    except Exception as error:  # onnxruntime raises its own untyped errors on unreadable files
        raise UserError(f"{path} is not a readable ONNX model ({str(error).splitlines()[0]})") from None


def _onnx_runner(path: Path):
    session = _onnx_session(path)
    input_name = session.get_inputs()[0].name
    return (lambda tiles: session.run(None, {input_name: tiles})[0]), f"onnxruntime ({session.get_providers()[0]})"


def _card_from_onnx(path: Path) -> ModelCard:
    if not path.is_file():
        raise UserError(f"{path} does not exist")
    metadata = _onnx_session(path).get_modelmeta().custom_metadata_map
    if ONNX_METADATA_KEY not in metadata:
        raise UserError(f"{path} carries no searchseg model card in its metadata; export it with searchseg retrain "
                        "EXPERIMENT --export onnx")
    return ModelCard.from_json(metadata[ONNX_METADATA_KEY], f"{path} metadata")
