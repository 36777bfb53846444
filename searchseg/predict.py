"""Apply an experiment's final model to new images: ``python -m searchseg.predict results/EXP IMAGES... --out DIR``."""

from __future__ import annotations

import argparse
from pathlib import Path

from searchseg.errors import cli_entry
from searchseg.options import BACKENDS, RESIZE_RULES
from searchseg.spaces.config import DEVICES
from searchseg.training.plugins import add_plugins_argument, trust_plugins


def build_parser(prog: str = "python -m searchseg.predict") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Predict masks for images of any size with an experiment's final model, preprocessed as its "
                    "final/model_card.json records. Writes OUT/masks/NAME.png (class indices at each image's own "
                    "size), OUT/colour/NAME.png (class colours) and OUT/predictions.csv.",
    )
    parser.add_argument("experiment", type=Path,
                        help="experiment folder (results/NAME), its final/ folder (or a final-TRIAL/ one from retrain "
                             "--trial), or an exported .onnx file")
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="image files, folders (searched recursively), glob patterns or CSV manifests (column "
                             "'image', paths relative to the CSV)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--backend", choices=BACKENDS, default="torch",
                        help="torch: final/model.pt; onnx: final/model.onnx through ONNX Runtime (default: torch)")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="torch backend's device (default: auto)")
    parser.add_argument("--batch-size", type=int, default=8, help="tiles per forward pass (default: 8)")
    parser.add_argument("--overlap", type=float, default=0.25,
                        help="least overlap of neighbouring tiles, as a fraction of the tile (default: 0.25)")
    parser.add_argument("--resize", choices=RESIZE_RULES, default="auto",
                        help="auto: resize to the typical training scale (never below one window) and tile what is "
                             "larger (default); squash: resize every whole image to one window")
    parser.add_argument("--overlays", action="store_true", help="also write OUT/overlays/NAME.png")
    parser.add_argument("--probabilities", action="store_true",
                        help="also write OUT/probabilities/NAME.npy: float16 (classes, height, width)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_plugins_argument(parser)
    return parser


@cli_entry
def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    args = (build_parser(prog) if prog else build_parser()).parse_args(argv)
    trust_plugins(args.plugins)
    from searchseg.prediction.batch import predict_to_folder  # torch: after the arguments are read
    from searchseg.prediction.predictor import Predictor

    predictor = Predictor.load(args.experiment, backend=args.backend, device=args.device, batch_size=args.batch_size,
                               overlap=args.overlap, resize=args.resize)
    table = predict_to_folder(predictor, args.inputs, args.out, overlays=args.overlays,
                              probabilities=args.probabilities, progress=not args.quiet)
    print(f"predicted {len(table)} images on {predictor.device}: masks in {args.out / 'masks'}, "
          f"list in {args.out / 'predictions.csv'}")


if __name__ == "__main__":
    main()
