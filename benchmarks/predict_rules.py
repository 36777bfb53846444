"""How well ``searchseg predict`` does at each image's own size: training-scale tiles against squashing.

Training resizes every image to ``image_size`` square, and the test mIoU in ``final/metrics.json`` is measured
there, against masks resized the same way. A user predicts at the image's own size. This predicts an
experiment's test split from the original files with both resize rules (``auto``, the default: as training
resized, with tiles beyond training's largest image; ``squash``: always the whole image to one window) and scores
each against the original-size masks, with the seconds each image took; then the same for one mosaic of the test
images (the largest square number of them, cropped to a common size), an image far larger than most the model
trained on.

``python -m benchmarks.predict_rules results/EXP [--backend torch|onnx]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from searchseg.data import load_from_config, resolve_spec
from searchseg.data.loader import MaskDecoding
from searchseg.data.pairing import find_pairs
from searchseg.layout import ExperimentLayout
from searchseg.prediction.predictor import BACKENDS, RESIZE_RULES, Predictor
from searchseg.spaces.config import TrialConfig
from searchseg.training.metrics import SegmentationMetrics


def original_test_pairs(config: TrialConfig):
    """The test split's (image, mask) pairs and how to decode their masks, as the experiment split them."""
    data = load_from_config(config, progress=False)
    spec = resolve_spec(config.data, config.class_map, config.mask_suffix, config.group_by)
    pairs = find_pairs(spec.path, spec.layout, spec.mask_suffix).pairs
    return data, [pairs[i] for i in data.splits["test"]], MaskDecoding.for_pairs(spec, pairs)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.predict_rules", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", type=Path, help="experiment folder with a final model")
    parser.add_argument("--backend", choices=BACKENDS, default="torch")
    args = parser.parse_args()
    config = TrialConfig.load(ExperimentLayout(args.experiment).final().config)
    data, pairs, decoding = original_test_pairs(config)
    decoded = [decoding.decode_pair(pair, None, config.in_channels) for pair in pairs]
    sizes = sorted({image.shape[:2] for image, _, _ in decoded})
    print(f"{len(pairs)} test images of {len(sizes)} sizes, {sizes[0]} to {sizes[-1]}; trained at "
          f"{config.image_size} px, {torch.get_num_threads()} threads, backend {args.backend}")
    side = int(np.sqrt(len(decoded)))
    height, width = (min(image.shape[i] for image, _, _ in decoded[:side * side]) for i in (0, 1))
    rows = [[(image[:height, :width], mask[:height, :width]) for image, mask, _ in decoded[r * side:(r + 1) * side]]
            for r in range(side)]
    mosaic = (np.concatenate([np.concatenate([image for image, _ in row], 1) for row in rows], 0),
              np.concatenate([np.concatenate([mask for _, mask in row], 1) for row in rows], 0))
    print(f"mosaic: {side} x {side} test images, {mosaic[0].shape[0]} x {mosaic[0].shape[1]} px")
    for rule in RESIZE_RULES:
        predictor = Predictor.load(args.experiment, backend=args.backend, resize=rule)
        for label, items in (("test images", [(image, mask) for image, mask, _ in decoded]), ("mosaic", [mosaic])):
            metrics = SegmentationMetrics(data.class_names, data.ignore_index)
            seconds, tiles = [], []
            for image, mask in items:
                started = time.perf_counter()
                prediction = predictor(image)
                seconds.append(time.perf_counter() - started)
                tiles.append(prediction.tiles)
                metrics.update(torch.from_numpy(prediction.labels[None]).long(), torch.from_numpy(mask[None]).long())
            print(f"  {rule:<7} {label:<12} mIoU {metrics.compute()['miou']:.4f} at the original size; "
                  f"{np.median(seconds):.3f} s per image (median), {np.median(tiles):.0f} tiles (median)")
    print(f"  final/metrics.json: test mIoU {predictor.card.metrics['test_miou']:.4f} at {config.image_size} px")


if __name__ == "__main__":
    main()
