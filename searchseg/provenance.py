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


def ray_node_id() -> str:
    """The Ray node this process runs on, "" outside Ray: which node of a cluster did the work a record describes
    (nodes of one machine share a host name). Ray is not imported for it: a process that has not imported it is in
    no Ray cluster."""
    ray = sys.modules.get("ray")
    return ray.get_runtime_context().get_node_id() if ray is not None and ray.is_initialized() else ""


def run_metadata() -> dict:
    return {
        "command": " ".join([sys.executable.rsplit("/", 1)[-1], *sys.argv]),
        "host": platform.node(),
        "node_id": ray_node_id(),
        "platform": platform.platform(),
        "versions": package_versions(),
    }
