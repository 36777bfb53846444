"""Shared fixtures: tiny real files on disk, and the shared real datasets when present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
DUBAI = SHARED_DATASETS / "dubai_aerial"
CHASE = SHARED_DATASETS / "chase_db1"

# Three classes and one ignored colour, as a colour class map.
COLOURS = {0: (255, 0, 0), 1: (0, 255, 0), 2: (0, 0, 255)}
IGNORE_COLOUR = (0, 0, 0)


def requires(path: Path):
    return pytest.mark.skipif(not path.is_dir(), reason=f"{path} is absent (the shared datasets sit beside the repo)")


def save(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (Image.fromarray(array, mode) if mode else Image.fromarray(array)).save(path)
    return path


def synthetic_labels(rng: np.random.Generator, size: int, classes: int = 3) -> np.ndarray:
    """A label map of a few axis-aligned rectangles, the kind of blob a model learns in a few steps."""
    labels = np.zeros((size, size), np.uint8)
    for _ in range(4):
        y, x = rng.integers(0, size - size // 4, 2)
        h, w = rng.integers(size // 4, size // 2, 2)
        labels[y:y + h, x:x + w] = rng.integers(1, classes)
    return labels


def labels_to_image(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An RGB image whose colour tells the class, plus noise: learnable, yet not trivially identical."""
    image = np.stack([COLOURS[int(c)] for c in range(3)])[labels].astype(np.int16) // 2 + 60
    image += rng.integers(-20, 20, image.shape, dtype=np.int16)
    return np.clip(image, 0, 255).astype(np.uint8)


@pytest.fixture
def colour_dataset(tmp_path: Path) -> Path:
    """``root/Group N/images/*.jpg`` with colour ``masks/*.png`` and ``classes.json``: 12 pairs in 4 groups."""
    rng = np.random.default_rng(0)
    root = tmp_path / "colour data"
    for index in range(12):
        labels = synthetic_labels(rng, 64)
        mask = np.stack([COLOURS[int(c)] for c in range(3)])[labels].astype(np.uint8)
        mask[:2, :2] = IGNORE_COLOUR
        group = root / f"Group {index % 4}"
        save(group / "images" / f"img_{index:02d}.png", labels_to_image(labels, rng))
        save(group / "masks" / f"img_{index:02d}.png", mask)
    (root / "classes.json").write_text(
        '{"classes": [{"name": "red", "color": "#FF0000"}, {"name": "green", "color": "#00FF00"},'
        ' {"name": "blue", "color": "#0000FF"}], "ignore": [{"color": "#000000"}]}'
    )
    return root


@pytest.fixture
def binary_dataset(tmp_path: Path) -> Path:
    """Masks beside images with a ``_mask`` suffix, 0/255 values: 8 pairs."""
    rng = np.random.default_rng(1)
    root = tmp_path / "binary"
    for index in range(8):
        labels = (synthetic_labels(rng, 64, classes=2) > 0).astype(np.uint8)
        save(root / f"case{index}.png", labels_to_image(labels, rng))
        save(root / f"case{index}_mask.png", labels * 255)
    return root


def image_counts(hits: list[int], pixels: int = 100) -> np.ndarray:
    """Per-image class counts ``(N, 3, 2)`` of binary images whose foreground (half the pixels) is found
    ``hits[i]`` times out of ``pixels // 2``."""
    from searchseg.training.class_counts import counts_from_confusions

    half = pixels // 2
    return counts_from_confusions(np.array([[[half, 0], [half - hit, hit]] for hit in hits]))


def tiny_data(count: int = 8, size: int = 64, seed: int = 0):
    """An in-memory SegmentationData of synthetic 3-class images, split 4 train / 2 val / 2 test by default."""
    from searchseg.data.loader import SegmentationData

    rng = np.random.default_rng(seed)
    labels = np.stack([synthetic_labels(rng, size) for _ in range(count)])
    images = np.stack([labels_to_image(label, rng) for label in labels])
    indices = np.arange(count)
    half = count // 2
    return SegmentationData(
        images=images, masks=labels, names=[f"s{i}" for i in indices], groups=[""] * count,
        class_names=("a", "b", "c"), ignore_index=255, binary=False,
        splits={"train": indices[:half], "val": indices[half:half + count // 4], "test": indices[half + count // 4:]},
        source="synthetic",
    )


def pids_matching(fragment: str) -> list[int]:
    """PIDs of processes whose command line contains ``fragment`` (read from /proc, Linux only)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if fragment in command:
                pids.append(int(entry.name))
    return pids


# A small search: 6 trials of up to 3 epochs on 64 px images, ASHA stopping at epoch 1.
SEARCH_SPACE = """
search: {samples: 6, epochs: 3, grace_period: 1, reduction_factor: 3, concurrency: 2, n_startup_trials: 2}
fixed: {image_size: 64, batch_size: 4, augment: light, arch: unet, encoder: resnet18, group_by: folder,
        val_fraction: 0.25, test_fraction: 0.25}
params:
  lr: {loguniform: [1.0e-4, 3.0e-2]}
  loss.ce: {uniform: [0.2, 1.0]}
  loss.dice: {choice: [0.0, 0.5]}
"""


@pytest.fixture(scope="module")
def search_dataset(tmp_path_factory) -> Path:
    """12 colour-mask pairs in 4 folders with ``classes.yaml``; ``space.yaml`` (SEARCH_SPACE) beside the folder."""
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("search") / "data"
    for index in range(12):
        labels = synthetic_labels(rng, 64)
        mask = np.stack([COLOURS[c] for c in range(3)])[labels].astype(np.uint8)
        mask[:2, :2] = IGNORE_COLOUR
        save(root / f"g{index % 4}" / "images" / f"{index}.png", labels_to_image(labels, rng))
        save(root / f"g{index % 4}" / "masks" / f"{index}.png", mask)
    (root / "classes.yaml").write_text("classes: [{name: red, color: '#FF0000'}, {name: green, color: '#00FF00'},"
                                       " {name: blue, color: '#0000FF'}]\nignore: ['#000000']\n")
    (root.parent / "space.yaml").write_text(SEARCH_SPACE)
    return root


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
