"""A torch Dataset over the decoded arrays (in memory or memory-mapped): no decoding per item, only augmentation."""

from __future__ import annotations

import albumentations as A
import numpy as np
import torch
from torch.utils.data import Dataset


class ArrayDataset(Dataset):
    """Items ``indices`` of ``images``/``masks``, optionally augmented.

    Shape: returns image ``(C, H, W)`` uint8 (normalised later, on the device) and mask ``(H, W)`` int64.
    """

    def __init__(self, images: np.ndarray, masks: np.ndarray, indices: np.ndarray,
                 transform: A.Compose | None = None) -> None:
        self.images, self.masks, self.indices, self.transform = images, masks, indices, transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = self.indices[item]
        image, mask = self.images[index], self.masks[index]
        if self.transform is not None:
            out = self.transform(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
        # a memory-mapped dataset is read-only: torch wants arrays it may write, so an unaugmented item is copied
        image = torch.from_numpy(np.require(image, requirements=("C", "W"))).permute(2, 0, 1)
        return image, torch.from_numpy(np.require(mask, requirements=("C", "W"))).long()
