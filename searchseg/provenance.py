"""What a result needs to be rebuilt: package versions, command line, machine."""

from __future__ import annotations

import platform
import sys
from importlib.metadata import PackageNotFoundError, version

PACKAGES = ("searchseg", "torch", "torchvision", "segmentation-models-pytorch", "timm", "albumentations",
            "torchmetrics", "numpy", "ray", "optuna")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def run_metadata() -> dict:
    return {
        "command": " ".join([sys.executable.rsplit("/", 1)[-1], *sys.argv]),
        "host": platform.node(),
        "platform": platform.platform(),
        "versions": package_versions(),
    }
