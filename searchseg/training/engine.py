"""Training engine in plain PyTorch: one epoch of training, evaluation, and ``fit`` over epochs.

No Ray here: the single-trial CLI and the Ray Tune trainable both call ``fit`` and receive each
epoch's metrics (and a checkpoint state) through the ``on_epoch`` callback.

Epoch ``e`` draws its shuffling, augmentation and dropout from seeds derived from ``(seed, e)``,
so a run resumed from a checkpoint continues exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from itertools import islice

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, RandomSampler
from tqdm import tqdm

from searchseg.data.balance import median_frequency_weights
from searchseg.data.loader import SegmentationData
from searchseg.data.torch_dataset import ArrayDataset
from searchseg.errors import UserError
from searchseg.spaces.config import TrialConfig
from searchseg.training.augment import PRESETS, build_augmentation, check_preset
from searchseg.training.class_counts import class_counts_per_image
from searchseg.training.losses import LOSSES, LossContext, LossMix, check_loss_names
from searchseg.training.metrics import SegmentationMetrics, predict_labels
from searchseg.training.models import CLASSIC_ARCHS, SMP_ARCHS, check_image_size, check_model_names, create_model
from searchseg.training.normalisation import normalisation
from searchseg.training.optim import OPTIMIZERS, build_optimizer
from searchseg.training.plugins import load_plugins
from searchseg.training.registry import Registry
from searchseg.training.schedules import ONE_CYCLE, SCHEDULES, check_schedule, lr_factor

EpochCallback = Callable[[dict, "Trainer"], None]


def validate_config(config: TrialConfig) -> None:
    """Check every name and size a config uses before any data is decoded or model built, after importing
    the config's plugins (which may register names)."""
    load_plugins(config.plugins)
    check_model_names(config.arch, config.encoder)
    check_image_size(config.arch, config.model_size)
    check_loss_names(config.loss)
    check_preset(config.augment)
    OPTIMIZERS.check(config.optimizer)
    check_schedule(config.scheduler)
    check_entry_options(config.options)


def check_entry_options(keys) -> None:
    """Each ``KIND.NAME.PARAM`` key must name a registered entry and a parameter it declares."""
    registries: dict[str, Registry] = {"arch": CLASSIC_ARCHS, "loss": LOSSES, "optimizer": OPTIMIZERS,
                                       "scheduler": SCHEDULES, "augment": PRESETS}
    for key in keys:
        kind, name, param = key.split(".")
        if kind == "arch" and name in SMP_ARCHS:
            raise UserError(f"{key}: smp architectures take no parameters here; registered ones do "
                            f"({', '.join(sorted(CLASSIC_ARCHS))})")
        registries[kind].options(name, {param: None})


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device=cuda but no CUDA GPU is visible; use --set device=cpu or device=auto")
    return torch.device(name)


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch computes with ``count`` CPU threads inside the block, and with what it had before after it."""
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, count))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def seeded_torch(seed: int, device: torch.device) -> Iterator[None]:
    """Torch's random generator seeded with ``seed`` inside, put back as it was after: a Trainer draws its
    initial weights and each epoch's dropout from its own seed and leaves the caller's random state alone."""
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


class FitStatus(str, Enum):
    """How a ``fit`` ended."""

    COMPLETED = "completed"  # every epoch of the config
    NAN_LOSS = "nan_loss"  # the loss became NaN or infinite (the reason says where)
    STOPPED = "stopped"  # the epoch callback raised StopTraining

    def __str__(self) -> str:
        return self.value


@dataclass
class FitResult:
    """How a run ended (with the reason for ``NAN_LOSS`` and ``STOPPED``), and what it reached."""

    status: FitStatus
    reason: str
    epochs_run: int
    best_miou: float
    best_epoch: int
    history: list[dict] = field(default_factory=list)


class StopTraining(Exception):
    """Raised by an epoch callback to end training early (e.g. by a scheduler)."""


@dataclass
class ScheduleHorizon:
    """The learning-rate multiplier of a LambdaLR schedule whose end can move (``Trainer.set_remaining_steps``).

    The scheduler holds this object rather than a closure over the Trainer: a closure would make a reference
    cycle (trainer -> scheduler -> closure -> trainer) that keeps a dropped Trainer, and its GPU memory, alive
    until the garbage collector happens to run (measured: 227 MiB held on an H100 after ``del trainer``).
    """

    total_steps: int
    warmup_steps: int
    schedule: str
    options: dict = field(default_factory=dict)  # the schedule's own parameters (scheduler.NAME.PARAM keys)

    def __call__(self, step: int) -> float:
        return lr_factor(step, self.total_steps, self.warmup_steps, self.schedule, self.options)


class Trainer:
    """Model, loss, optimizer, schedule and loaders for one config on one decoded dataset.

    After ``evaluate``, ``eval_counts`` holds that evaluation's class counts per image ``(N, 3, C)``: what a
    comparison of two models beyond resampling noise needs (``metrics.bootstrap_win_rate``).
    """

    def __init__(self, config: TrialConfig, data: SegmentationData, train_splits: tuple[str, ...] = ("train",),
                 eval_split: str = "val") -> None:
        validate_config(config)
        if not config.threads:  # record the count this process computes with: a rerun needs the same one
            config = config.replace(threads=torch.get_num_threads())
        if data.images.shape[1:3] != (config.image_size, config.image_size):
            raise ValueError(f"data decoded at {data.images.shape[1:3]}, config wants image_size={config.image_size}")
        self.config, self.data, self.eval_split = config, data, eval_split
        self.device = resolve_device(config.device)
        self.cuda = self.device.type == "cuda"
        binary = data.binary
        with seeded_torch(config.seed, self.device):
            self.model = create_model(config.arch, config.encoder, config.encoder_weights, config.in_channels,
                                      1 if binary else data.num_classes,
                                      options=config.options_for("arch", config.arch)).to(self.device)
        if self.cuda and config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.class_weights = median_frequency_weights(data.class_frequencies("train"))
        context = LossContext(binary, data.num_classes, data.ignore_index, self.class_weights,
                              config.focal_gamma, config.tversky_alpha, config.tversky_beta)
        self.loss_fn = LossMix(config.loss, context, {name: config.options_for("loss", name) for name in config.loss}
                               ).to(self.device)

        self.train_indices = np.sort(np.concatenate([data.splits[s] for s in train_splits]))
        self.augmentation = build_augmentation(config.augment, config.augment_strength, config.image_size,
                                               data.ignore_index, config.in_channels,
                                               options=config.options_for("augment", config.augment))
        train_set = ArrayDataset(data.images, data.masks, self.train_indices, self.augmentation)
        self.loader_generator = torch.Generator()
        # With epoch_steps, an epoch draws that many batches from back-to-back shuffled passes over the data.
        draws = config.epoch_steps * config.batch_size or None
        sampler = RandomSampler(train_set, num_samples=draws, generator=self.loader_generator)
        self.train_loader = DataLoader(
            train_set, batch_size=config.batch_size, sampler=sampler, num_workers=config.num_workers,
            drop_last=len(sampler) > config.batch_size, pin_memory=self.cuda,
            persistent_workers=config.num_workers > 0,
        )
        self.optimizer = build_optimizer(self.model.parameters(), config)
        self.steps_per_epoch = len(self.train_loader)
        self.horizon = ScheduleHorizon(config.epochs * self.steps_per_epoch,
                                       round(config.warmup_epochs * self.steps_per_epoch), config.scheduler,
                                       config.options_for("scheduler", config.scheduler))
        self.scheduler = self._make_scheduler()
        mean, std = normalisation(config.in_channels)
        self.mean = torch.tensor(mean, device=self.device).view(1, -1, 1, 1) * 255
        self.std = torch.tensor(std, device=self.device).view(1, -1, 1, 1) * 255
        self.epoch = 0
        self.steps_left: int | None = None  # set_remaining_steps: the steps before training ends, the last epoch short
        # a clock time (time.time()) after which an epoch takes no further step: a deadline holds even when the pace
        # changes within an epoch (with another job on one of 2 cores one epoch took 19-42 s of a 35 s budget)
        self.stop_at: float | None = None
        self.last_epoch_steps, self.last_epoch_train_seconds = 0, 0.0
        self.best_miou = float("-inf")
        self.best_epoch = 0
        self.eval_counts = np.zeros((0, 3, data.num_classes), np.int32)

    def _make_scheduler(self) -> torch.optim.lr_scheduler.LRScheduler:
        c = self.config
        if c.scheduler == ONE_CYCLE:
            return torch.optim.lr_scheduler.OneCycleLR(self.optimizer, max_lr=c.lr, total_steps=self.total_steps)
        return torch.optim.lr_scheduler.LambdaLR(self.optimizer, self.horizon)

    @property
    def total_steps(self) -> int:
        return self.horizon.total_steps

    def set_remaining_steps(self, steps: int) -> None:
        """End training, and the learning-rate schedule, ``steps`` optimizer steps from now, the last epoch shorter
        than the others where ``steps`` is not a whole number of epochs: a budgeted final training re-plans its end
        from its measured pace. OneCycle's horizon is fixed when it is built: there only the epochs move."""
        self.steps_left = steps
        self.config = self.config.replace(epochs=self.epoch + math.ceil(steps / self.steps_per_epoch))
        if self.config.scheduler != ONE_CYCLE:
            self.horizon.total_steps = self.scheduler.last_epoch + steps  # last_epoch counts the steps taken

    def prepare_images(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``(B, C, H, W)`` -> normalised float on the device at the model's size, in its memory format."""
        images = images.to(self.device, non_blocking=True).float()
        images = (images - self.mean) / self.std
        size = self.config.model_size
        if images.shape[-2:] != (size, size):
            images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        if self.cuda and self.config.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def prepare_batch(self, images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A training batch: images and masks at the model's size."""
        masks = masks.to(self.device, non_blocking=True)
        size = self.config.model_size
        if masks.shape[-2:] != (size, size):
            masks = F.interpolate(masks[:, None].float(), size=(size, size), mode="nearest")[:, 0].to(masks.dtype)
        return self.prepare_images(images), masks

    def full_size_logits(self, images: torch.Tensor) -> torch.Tensor:
        """The model's logits for prepared ``images``, at the decoded size, where predictions are scored."""
        with self.autocast():
            logits = self.model(images)
        size = self.config.image_size
        if logits.shape[-2:] != (size, size):
            logits = F.interpolate(logits.float(), size=(size, size), mode="bilinear", align_corners=False)
        return logits

    def autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.cuda and self.config.amp)

    def train_one_epoch(self, progress: bool = False) -> tuple[float, float]:
        """Train one epoch. Returns (mean loss, images per second); a non-finite loss raises FloatingPointError."""
        epoch_seed = self.config.seed * 100_003 + self.epoch
        self.loader_generator.manual_seed(epoch_seed)
        self.augmentation.set_random_seed(epoch_seed)
        with seeded_torch(epoch_seed, self.device):  # dropout, drop-path
            return self._train_epoch(progress)

    def _train_epoch(self, progress: bool) -> tuple[float, float]:
        self.model.train()
        total_loss, seen, started = 0.0, 0, time.perf_counter()
        steps = self.steps_per_epoch if self.steps_left is None else min(self.steps_per_epoch, self.steps_left)
        batches = tqdm(islice(self.train_loader, steps), desc=f"epoch {self.epoch + 1}/{self.config.epochs}",
                       unit="batch", total=steps, leave=False, disable=not progress)
        taken = 0
        for step, (images, masks) in enumerate(batches):
            images, masks = self.prepare_batch(images, masks)
            with self.autocast():
                logits = self.model(images)
            loss = self.loss_fn(logits, masks)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at epoch {self.epoch + 1}, step {step + 1}")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.optimizer.step()
            if self.scheduler.last_epoch < self.total_steps:
                self.scheduler.step()
            total_loss += loss.item() * len(images)
            seen, taken = seen + len(images), step + 1
            batches.set_postfix(loss=f"{loss.item():.4f}")
            if self.stop_at is not None and time.time() >= self.stop_at:
                break
        elapsed = time.perf_counter() - started
        self.last_epoch_steps, self.last_epoch_train_seconds = taken, elapsed
        if self.steps_left is not None:
            self.steps_left -= taken
        return total_loss / max(seen, 1), seen / max(elapsed, 1e-9)

    @torch.no_grad()
    def evaluate(self, split: str | None = None, indices: np.ndarray | None = None) -> tuple[float, dict]:
        """Mean loss and metrics over a split (or given indices) without augmentation."""
        if indices is None:
            indices = self.data.splits[split or self.eval_split]
        loader = DataLoader(ArrayDataset(self.data.images, self.data.masks, indices),
                            batch_size=self.config.batch_size, shuffle=False)
        metrics = SegmentationMetrics(self.data.class_names, self.data.ignore_index, self.device)
        self.model.eval()
        total_loss, seen, per_image = 0.0, 0, [self.eval_counts[:0]]
        for images, masks in loader:
            images, masks = self.prepare_images(images), masks.to(self.device, non_blocking=True)
            logits = self.full_size_logits(images)
            total_loss += self.loss_fn(logits, masks).item() * len(images)
            seen += len(images)
            labels = predict_labels(logits.float())
            metrics.update(labels, masks)
            per_image.append(class_counts_per_image(labels.cpu().numpy(), masks.cpu().numpy(),
                                                    self.data.num_classes, self.data.ignore_index))
        self.eval_counts = np.concatenate(per_image)
        return total_loss / max(seen, 1), metrics.compute() if seen else {}

    @torch.no_grad()
    def predict(self, indices: np.ndarray) -> np.ndarray:
        """Predicted class maps ``(N, H, W)`` uint8 for the given items."""
        self.model.eval()
        out = []
        for start in range(0, len(indices), self.config.batch_size):
            chunk = indices[start:start + self.config.batch_size]
            batch = torch.from_numpy(self.data.images[chunk]).permute(0, 3, 1, 2)
            logits = self.full_size_logits(self.prepare_images(batch))
            out.append(predict_labels(logits.float()).to(torch.uint8).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, *self.data.masks.shape[1:]), np.uint8)

    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "best_miou": self.best_miou,
            "best_epoch": self.best_epoch,
            "config": self.config.to_flat(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.best_miou, self.best_epoch = state["epoch"], state["best_miou"], state["best_epoch"]


def epoch_row(epoch: int, train_loss: float, images_per_s: float, eval_loss: float, metrics: dict, lr: float,
              seconds: float, prefix: str = "val") -> dict:
    """The flat per-epoch record written to metrics.csv and reported to Ray Tune."""
    row = {
        "epoch": epoch,
        "train_loss": train_loss,
        f"{prefix}_loss": eval_loss,
        f"{prefix}_miou": metrics.get("miou", float("nan")),
        f"{prefix}_dice": metrics.get("dice", float("nan")),
        f"{prefix}_pixel_accuracy": metrics.get("pixel_accuracy", float("nan")),
        "lr": lr,
        "epoch_seconds": seconds,
        "train_images_per_s": images_per_s,
    }
    row.update({f"{prefix}_iou.{metric_name(name)}": value for name, value in metrics.get("iou_per_class", {}).items()})
    return row


def metric_name(class_name: str) -> str:
    """A class name usable as a metric name by every tracker, still readable: each run of characters MLflow or
    TensorBoard would refuse or rewrite (brackets, spaces) becomes one underscore, ``Land (unpaved area)`` ->
    ``Land_unpaved_area``."""
    return re.sub(r"[^\w\-.]+", "_", class_name).strip("_") or "class"


def fit(config: TrialConfig, data: SegmentationData, on_epoch: EpochCallback | None = None,
        resume_state: dict | None = None, progress: bool = True, trainer: Trainer | None = None) -> FitResult:
    """Train for ``config.epochs`` epochs, evaluating on the validation split after each.

    ``on_epoch(row, trainer)`` sees each epoch's metrics after ``trainer`` holds the new best state;
    it may save ``trainer.state_dict()`` and may raise ``StopTraining``. A non-finite loss ends the run
    with status ``nan_loss`` and its reason instead of raising.
    """
    trainer = trainer or Trainer(config, data)
    if resume_state is not None:
        trainer.load_state_dict(resume_state)
    with torch_threads(trainer.config.threads):
        return _fit_epochs(trainer, on_epoch, progress)


def _fit_epochs(trainer: Trainer, on_epoch: EpochCallback | None, progress: bool) -> FitResult:
    history: list[dict] = []
    status, reason = FitStatus.COMPLETED, ""
    while trainer.epoch < trainer.config.epochs:
        started = time.perf_counter()
        try:
            train_loss, images_per_s = trainer.train_one_epoch(progress)
        except FloatingPointError as err:
            status, reason = FitStatus.NAN_LOSS, str(err)
            break
        val_loss, metrics = trainer.evaluate()
        trainer.epoch += 1
        miou = metrics.get("miou", float("nan"))
        if miou > trainer.best_miou:
            trainer.best_miou, trainer.best_epoch = miou, trainer.epoch
        row = epoch_row(trainer.epoch, train_loss, images_per_s, val_loss, metrics,
                        trainer.optimizer.param_groups[0]["lr"], time.perf_counter() - started,
                        prefix=trainer.eval_split)
        history.append(row)
        if on_epoch is not None:
            try:
                on_epoch(row, trainer)
            except StopTraining as stop:
                status, reason = FitStatus.STOPPED, str(stop)
                break
    return FitResult(status, reason, trainer.epoch, trainer.best_miou, trainer.best_epoch, history)
