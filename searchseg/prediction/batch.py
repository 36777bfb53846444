"""Predict every image named by files, folders, globs or CSV manifests, and write the masks under one folder.

``OUT/masks/NAME.png`` holds class indices (8-bit, at the image's own size), ``OUT/colour/NAME.png`` the same in
the class colours; optionally ``OUT/overlays/NAME.png`` (image blended with the colours) and
``OUT/probabilities/NAME.npy`` (float16 ``(C, H, W)``). ``OUT/predictions.csv`` lists each image with its sizes,
tile count, time, and the reason when it could not be read.
"""

from __future__ import annotations

import csv
import glob
import os
import time
from functools import partial
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
from tqdm import tqdm

from searchseg.data.io import DataError, read_image
from searchseg.data.pairing import IMAGE_EXTENSIONS
from searchseg.errors import UserError
from searchseg.io_utils import atomic_write, atomic_write_png, atomic_write_text
from searchseg.palette import as_rgb, colourise
from searchseg.prediction.predictor import Prediction, Predictor

OVERLAY_OPACITY = 0.5


def _csv_images(manifest: Path) -> list[Path]:
    """The ``image`` column of a manifest (else its first column), relative to the manifest's folder."""
    with manifest.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise UserError(f"{manifest} has no rows; give one image path per row under an 'image' header")
    column = "image" if "image" in rows[0] else next(iter(rows[0]))
    return [manifest.parent / row[column] for row in rows if row[column]]


def output_name(relative: str) -> str:
    """An output name that stays inside the folder it is written under, whatever the input was called: ``..``
    parts become ``_`` (a manifest row ``../x.jpg`` is written as ``_/x``, never beside ``OUT``), a root and ``.``
    parts are dropped."""
    parts = PurePosixPath(relative.replace("\\", "/")).parts
    return "/".join("_" if part == ".." else part for part in parts if part not in ("/", ".", "")) or "_"


def expand_inputs(inputs: list[str]) -> list[tuple[Path, str]]:
    """Each image to predict with its output name: the path relative to the folder or manifest it came from
    (without extension), so images of the same name in different folders do not overwrite each other; names
    that would leave the output folder are made safe by ``output_name``."""
    found: list[tuple[Path, str]] = []
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                           and not p.name.startswith("."))
            found += [(p, p.relative_to(path).with_suffix("").as_posix()) for p in files]
        elif path.suffix.lower() == ".csv" and path.is_file():
            found += [(p, Path(os.path.relpath(p, path.parent)).with_suffix("").as_posix())
                      for p in _csv_images(path)]
        elif path.is_file():
            found.append((path, path.stem))
        else:
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
            if not matches:
                raise UserError(f"{text} is neither an image, a folder, a CSV manifest nor a pattern matching files")
            found += [(p, p.stem) for p in matches]
    if not found:
        raise UserError(f"no images found in {', '.join(inputs)} (extensions: {', '.join(sorted(IMAGE_EXTENSIONS))})")
    found = [(path, output_name(name)) for path, name in found]
    names: dict[str, Path] = {}
    for path, name in found:
        if name in names and names[name] != path:
            raise UserError(f"{names[name]} and {path} would both be written as {name}.png; give their folder "
                            "instead, so the outputs keep the folder structure")
        names[name] = path
    return list(dict.fromkeys(found))


def _save_npy(array: np.ndarray, path: Path) -> None:
    with path.open("wb") as handle:  # np.save given a name would append .npy to the temporary file's
        np.save(handle, array)


def _write_outputs(out: Path, name: str, image: np.ndarray, prediction: Prediction, predictor: Predictor,
                   overlays: bool) -> None:
    classes = predictor.card.classes
    colour = colourise(prediction.labels, classes.colors, classes.ignore_index)
    atomic_write_png(out / "masks" / f"{name}.png", prediction.labels)
    atomic_write_png(out / "colour" / f"{name}.png", colour)
    if overlays:
        blend = (1 - OVERLAY_OPACITY) * as_rgb(image) + OVERLAY_OPACITY * colour
        atomic_write_png(out / "overlays" / f"{name}.png", blend.round().astype(np.uint8))
    if prediction.probabilities is not None:
        probabilities = prediction.probabilities.astype(np.float16)
        atomic_write(out / "probabilities" / f"{name}.npy", partial(_save_npy, probabilities))


def predict_to_folder(predictor: Predictor, inputs: list[str], out: Path, overlays: bool = False,
                      probabilities: bool = False, progress: bool = True) -> pd.DataFrame:
    """Predict every input image and write its masks under ``out``; returns the rows of ``predictions.csv``.
    An image that cannot be read is recorded with its reason and the others go on; then one line says so."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder; give a folder for the masks")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"--out {out} cannot be created ({error.strerror}); give a folder you can write") from None
    items = expand_inputs(inputs)
    rows: list[dict[str, object]] = []
    for path, name in tqdm(items, desc=f"predicting {len(items)} images", unit="img", disable=not progress):
        started = time.perf_counter()
        try:
            image = read_image(path, predictor.card.preprocessing.channels)
        except DataError as error:
            rows.append({"image": str(path), "mask": "", "error": str(error)})
            continue
        prediction = predictor(image, probabilities=probabilities)
        _write_outputs(out, name, image, prediction, predictor, overlays)
        rows.append({"image": str(path), "mask": f"masks/{name}.png", "height": image.shape[0],
                     "width": image.shape[1], "working_height": prediction.working_size[0],
                     "working_width": prediction.working_size[1], "tiles": prediction.tiles,
                     "seconds": round(time.perf_counter() - started, 4), "error": ""})
    table = pd.DataFrame(rows).convert_dtypes()  # sizes stay integers beside an unreadable image's blanks
    atomic_write_text(out / "predictions.csv", table.to_csv(index=False))
    failed = table[table["error"] != ""]
    if len(failed):
        raise UserError(f"{len(failed)} of {len(table)} images could not be read (first: {failed['error'].iloc[0]}); "
                        f"the others are predicted in {out}, see {out / 'predictions.csv'}")
    return table
