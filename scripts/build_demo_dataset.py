"""Rebuild the built-in demo dataset (searchseg/data/demo) from the public-domain Dubai aerial set.

Usage: python scripts/build_demo_dataset.py ../shared/datasets/dubai_aerial

Every tile's images are shrunk so the longer side is MAX_SIDE (area interpolation, JPEG quality 90)
and masks with nearest neighbour, which keeps their colours exact. Layout and names are kept.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from PIL import Image

MAX_SIDE = 256
DEMO = Path(__file__).resolve().parents[1] / "searchseg" / "data" / "demo"


def shrink(image: Image.Image, resample: int) -> Image.Image:
    scale = MAX_SIDE / max(image.size)
    return image.resize((round(image.width * scale), round(image.height * scale)), resample)


def main(source: Path) -> None:
    if DEMO.exists():
        shutil.rmtree(DEMO)
    for image_path in sorted(source.glob("Tile */images/*.jpg")):
        tile = image_path.parent.parent.name
        mask_path = source / tile / "masks" / (image_path.stem + ".png")
        for folder in ("images", "masks"):
            (DEMO / tile / folder).mkdir(parents=True, exist_ok=True)
        with Image.open(image_path) as image:
            shrink(image.convert("RGB"), Image.Resampling.BOX).save(
                DEMO / tile / "images" / image_path.name, quality=90
            )
        with Image.open(mask_path) as mask:
            shrink(mask.convert("RGB"), Image.Resampling.NEAREST).save(DEMO / tile / "masks" / mask_path.name)
    shutil.copy(source / "label_mapping.json", DEMO / "label_mapping.json")
    (DEMO / "dataset.yaml").write_text(
        "# Built-in demo: 72 tiles of the Dubai aerial set (Humans in the Loop / MBRSC, CC0 1.0),\n"
        f"# shrunk to {MAX_SIDE} px on the longer side. Rebuild with scripts/build_demo_dataset.py.\n"
        "layout: folders\n"
        "class_map: label_mapping.json\n"
        "group_by: folder\n"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
