"""The flat, validated configuration of one training run (one trial).

Every trial is rebuildable from this config alone (plus the data it names): it is saved as
``config.yaml`` next to the trial's results, and Ray Tune / Optuna sample exactly these keys.
Loss weights are the flat keys ``loss.<name>`` (e.g. ``loss.dice: 0.5``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from searchseg.errors import UserError

DEVICES = ("auto", "cpu", "cuda")
GROUP_BY = ("none", "folder")
LOSS_PREFIX = "loss."
# Config keys that choose a registered entry; ``KIND.NAME.PARAM`` keys set that entry's own parameters.
OPTION_KINDS = ("arch", "loss", "optimizer", "scheduler", "augment")


def is_loss_weight(key: str) -> bool:
    """``loss.dice`` is a loss weight; ``loss.my_focal.gamma`` is a parameter of a registered loss."""
    return key.startswith(LOSS_PREFIX) and key.count(".") == 1


def is_entry_option(key: str) -> bool:
    """``KIND.NAME.PARAM`` with KIND one of ``OPTION_KINDS``: a parameter of a registered entry."""
    parts = key.split(".")
    return len(parts) == 3 and parts[0] in OPTION_KINDS and all(parts)


def _opt(default: Any, help: str, choices: tuple | None = None, low: float | None = None,
         high: float | None = None, open_low: bool = False) -> Any:
    metadata = {"help": help, "choices": choices, "low": low, "high": high, "open_low": open_low}
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class TrialConfig:
    # data
    data: str | None = _opt(None, "dataset folder, CSV manifest or dataset YAML (default: built-in Dubai demo)")
    class_map: str | None = _opt(None, "class map JSON/YAML/CSV (names, colours, ignore); overrides the dataset's")
    mask_suffix: str | None = _opt(None, "mask file suffix for masks beside images, e.g. _1stHO")
    group_by: str | None = _opt(None, "keep groups in one split: 'folder' (parent folder) or 'none'", GROUP_BY)
    image_size: int = _opt(256, "working size in pixels; images are resized to size x size once", low=32, high=4096)
    input_size: int = _opt(0, "size the model sees: batches decoded at image_size are resized to it on the device "
                              "and predictions scored at image_size; 0 = image_size. Searchable, unlike image_size",
                           low=0, high=4096)
    in_channels: int = _opt(3, "3 for RGB (greyscale repeated), 1 to keep greyscale", (1, 3))
    val_fraction: float = _opt(0.15, "fraction of images (or groups) for validation", low=0.0, high=0.9)
    test_fraction: float = _opt(0.15, "fraction of images (or groups) for the held-out test", low=0.0, high=0.9)
    split_seed: int = _opt(0, "seed of the train/val/test split", low=0)
    # model
    arch: str = _opt("unet", "architecture (python -m searchseg.trial --list shows all)")
    encoder: str = _opt("resnet18", "smp encoder name; ignored by attention_unet and segnet")
    encoder_weights: str = _opt("none", "'none', 'imagenet', or a path to a local encoder state-dict file")
    # loss
    loss: dict = _opt({"ce": 1.0}, "loss mix as loss.NAME=WEIGHT keys, e.g. loss.ce=0.5 loss.dice=0.5")
    focal_gamma: float = _opt(2.0, "focusing parameter of the focal loss", low=0.0, high=10.0)
    tversky_alpha: float = _opt(0.5, "Tversky weight of false positives", low=0.0, high=1.0)
    tversky_beta: float = _opt(0.5, "Tversky weight of false negatives", low=0.0, high=1.0)
    # optimisation
    optimizer: str = _opt("adamw", "optimizer: adamw, adam, sgd, or one a plugin registers")
    lr: float = _opt(1e-3, "peak learning rate", low=0.0, high=10.0, open_low=True)
    weight_decay: float = _opt(1e-4, "weight decay", low=0.0, high=1.0)
    momentum: float = _opt(0.9, "SGD momentum", low=0.0, high=1.0)
    scheduler: str = _opt("cosine", "learning-rate schedule: cosine, poly, constant, onecycle, or one a plugin "
                                    "registers")
    warmup_epochs: float = _opt(0.0, "linear warm-up length in epochs (not used by onecycle)", low=0.0, high=1000)
    epochs: int = _opt(10, "training epochs (the ASHA budget in a search)", low=1, high=100000)
    epoch_steps: int = _opt(0, "optimizer steps per epoch; 0 = one pass over the training images. A fixed count "
                               "makes an epoch the same amount of training on any dataset size", low=0, high=10**6)
    batch_size: int = _opt(8, "batch size", low=1, high=4096)
    grad_clip: float = _opt(0.0, "clip gradient norm to this value; 0 turns clipping off", low=0.0, high=1e6)
    # augmentation
    augment: str = _opt("medium", "augmentation preset: none, light, medium (seed recipe), heavy")
    augment_strength: float = _opt(1.0, "scales the preset's probabilities and magnitudes", low=0.0, high=2.0)
    # run
    seed: int = _opt(0, "seed for weights, batches and augmentation", low=0)
    device: str = _opt("auto", "cuda when available, else cpu", DEVICES)
    amp: bool = _opt(True, "bf16 autocast on CUDA (ignored on CPU)")
    channels_last: bool = _opt(True, "channels_last memory format on CUDA (ignored on CPU)")
    threads: int = _opt(0, "CPU threads torch computes with; 0 = what the process has (a Ray trial: its CPUs). Saved "
                               "configs hold the count used: float sums depend on it, so a rerun matches only with "
                               "the same count", low=0, high=4096)
    cost_runs: int = _opt(5, "timed inference runs per batch size when a trial measures its latency before "
                                 "training (0: parameters and MACs only)", low=0, high=1000)
    cost_backend: str = _opt("torch", "what latency_ms times: torch (the model as the trial trains it: device, "
                                      "threads, precision) or onnx (its ONNX export through ONNX Runtime)",
                             ("torch", "onnx"))
    num_workers: int = _opt(0, "DataLoader worker processes (data is already decoded in memory)", low=0, high=64)
    plugins: str = _opt("", "modules to import before a trial is checked or built, comma-separated; they register "
                            "models, losses or optimizers (docs/models.md: Extending)")
    options: dict = _opt({}, "parameters of registered entries as KIND.NAME.PARAM keys, e.g. loss.my_focal.gamma=3")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, _coerce(f, getattr(self, f.name)))
        self.loss = {name: loss_weight(name, w) for name, w in self.loss.items()}
        if not any(w > 0 for w in self.loss.values()):
            raise UserError(f"loss weights {self.loss} are all zero; give at least one loss a positive weight")
        if self.input_size > self.image_size:
            raise UserError(f"input_size {self.input_size} is larger than image_size {self.image_size}: the model "
                            "would see upsampled images; decode at a larger image_size")

    @property
    def model_size(self) -> int:
        """The side of the images the model sees."""
        return self.input_size or self.image_size

    def to_flat(self) -> dict[str, Any]:
        """Flat dict (``loss.<name>`` keys), the form saved to YAML and searched by Tune."""
        flat = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("loss", "options")}
        flat.update({LOSS_PREFIX + name: weight for name, weight in sorted(self.loss.items())})
        flat.update(sorted(self.options.items()))
        return flat

    def options_for(self, kind: str, name: str) -> dict[str, Any]:
        """The ``kind.name.PARAM`` values given for entry ``name`` of registry ``kind``, by PARAM."""
        prefix = f"{kind}.{name}."
        return {key[len(prefix):]: value for key, value in self.options.items() if key.startswith(prefix)}

    @classmethod
    def from_flat(cls, flat: dict[str, Any]) -> TrialConfig:
        """Build from a flat dict; unknown keys fail listing the valid ones."""
        valid = {f.name for f in dataclasses.fields(cls)} - {"options"}
        kwargs: dict[str, Any] = {}
        loss: dict[str, float] = {}
        options: dict[str, Any] = {}
        for key, value in flat.items():
            if is_loss_weight(key):
                loss[key[len(LOSS_PREFIX):]] = value
            elif is_entry_option(key):
                options[key] = value
            elif key in ("loss", "options") and isinstance(value, dict):
                (loss if key == "loss" else options).update(value)
            elif key in valid:
                kwargs[key] = value
            else:
                raise UserError(f"unknown config key {key!r}; valid keys: {', '.join(sorted(valid - {'loss'}))}, "
                                "loss.<name>, KIND.<name>.<parameter>")
        if options:
            kwargs["options"] = options
        if loss:
            kwargs["loss"] = {name: w for name, w in loss.items() if w}
            if not kwargs["loss"]:
                kwargs["loss"] = loss
        return cls(**kwargs)

    def replace(self, **changes: Any) -> TrialConfig:
        flat = self.to_flat()
        flat.update(changes)
        return TrialConfig.from_flat(flat)

    def save(self, path: Path) -> None:
        from searchseg.io_utils import atomic_write_text

        atomic_write_text(path, yaml.safe_dump(self.to_flat(), sort_keys=False))

    @classmethod
    def load(cls, path: Path) -> TrialConfig:
        try:
            raw = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as err:
            raise UserError(f"config {path} cannot be read: {str(err).splitlines()[0]}") from None
        if not isinstance(raw, dict):
            raise UserError(f"config {path} must be a mapping of keys to values")
        return cls.from_flat(raw)


def _coerce(f: dataclasses.Field, value: Any) -> Any:
    """Check one value against its field's type and bounds, converting YAML-ish input (``'1e-3'``)."""
    meta = f.metadata
    if f.name in ("loss", "options"):
        if not isinstance(value, dict):
            raise UserError(f"{f.name} must be a mapping of names to values, got {value!r}")
        return value
    if value is None or value == "null":
        if "None" in str(f.type):
            return None
        raise UserError(f"config key {f.name!r} needs a value")
    kind = str(f.type).split("|")[0].strip()
    try:
        if kind == "bool":
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
                value = value.lower() in ("true", "1", "yes")
            if not isinstance(value, bool):
                raise ValueError
        elif kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            value = int(value)
        elif kind == "float":
            if isinstance(value, bool):
                raise ValueError
            value = float(value)
            if not math.isfinite(value):
                raise ValueError
        else:
            value = str(value)
    except (TypeError, ValueError):
        raise UserError(f"config key {f.name!r}: {value!r} is not a valid {kind}") from None
    if meta.get("choices") and value not in meta["choices"]:
        raise UserError(f"config key {f.name!r}: {value!r} is not one of {', '.join(map(str, meta['choices']))}")
    low, high = meta.get("low"), meta.get("high")
    if low is not None and (value < low or (meta.get("open_low") and value == low)):
        raise UserError(f"config key {f.name!r}: {value} is below its range [{low}, {high}]")
    if high is not None and value > high:
        raise UserError(f"config key {f.name!r}: {value} is above its range [{low}, {high}]")
    return value


def loss_weight(name: str, weight: Any) -> float:
    try:
        value = float(weight)
    except (TypeError, ValueError):
        raise UserError(f"loss weight loss.{name}={weight!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise UserError(f"loss weight loss.{name}={weight!r} must be a finite number >= 0")
    return value


def config_help() -> str:
    """One line per config key with its default and meaning, for ``--help``."""
    lines = []
    for f in dataclasses.fields(TrialConfig):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        shown = {"loss": "loss.ce=1.0", "options": "KIND.NAME.PARAM=V"}.get(f.name, f"{f.name}={default}")
        lines.append(f"  {shown:<28} {f.metadata['help']}")
    return "\n".join(lines)


def parse_assignments(assignments: list[str]) -> dict:
    """``["lr=1e-3", "loss.dice=0.5"]`` -> ``{"lr": 0.001, "loss.dice": 0.5}``, values read as YAML scalars."""
    parsed = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--set {item!r} is not key=value (e.g. --set lr=3e-4)")
        try:
            parsed[key.strip()] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            parsed[key.strip()] = value
        if isinstance(parsed[key.strip()], str):
            # YAML 1.1 reads "1e-3" as a string; numbers are what users mean.
            try:
                parsed[key.strip()] = float(value)
            except ValueError:
                pass
    return parsed
