"""Data at scale: a dataset of generated images (10,000 at 512 px by default, written once to a scratch folder, never
to git) decoded once into memory-mapped files, as a search does, against decoding it into memory, as a run whose
trials cannot read the experiment folder does.

- **Driver**: seconds to decode, its peak private memory (``RssAnon``, sampled every 20 ms: what the process
  itself holds; the mapped files' pages are the page cache's, shared and reclaimable) and its peak file-backed
  memory (``RssFile``), and the bytes Ray's object store gets for the data (``pickle.dumps``), each path in its own
  fresh process.
- **Workers**: ``--trials`` Ray tasks of one CPU each, as trials receive the data (through the object store), each
  building the engine's ``Trainer`` (U-Net/ResNet-18, no pretrained weights) and drawing its first training batch:
  seconds to that batch and the task's peak private and file-backed memory.

``python -m benchmarks.scale [--images 10000] [--size 512] [--folder DIR] [--output FILE.json]`` prints the table
and appends a row (commit, time, machine) to ``benchmarks/scale.json``. The generated images are kept in
``--folder`` for the next run.
"""

from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path

import numpy as np

from benchmarks.equal_time import commit

RESULTS = Path(__file__).with_name("scale.json")
CLASSES = 5
GIB = 2 ** 30


class MemoryPeaks(threading.Thread):
    """The highest ``RssAnon`` and ``RssFile`` of this process while it runs (Linux ``/proc/self/status``)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peaks = {"RssAnon": 0, "RssFile": 0}
        self.done = threading.Event()

    def sample(self) -> None:
        for line in Path("/proc/self/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in self.peaks:
                self.peaks[name] = max(self.peaks[name], int(value.split()[0]) * 1024)

    def run(self) -> None:
        while not self.done.wait(0.02):
            self.sample()

    def __enter__(self) -> MemoryPeaks:
        self.start()
        return self

    def __exit__(self, *_) -> None:
        self.done.set()
        self.join()
        self.sample()

    def gib(self) -> dict:
        return {"private_gib": self.peaks["RssAnon"] / GIB, "file_backed_gib": self.peaks["RssFile"] / GIB}


def _write_pair(job: tuple[Path, int, int]) -> None:
    import cv2

    folder, index, size = job
    rng = np.random.default_rng(index)
    labels = np.zeros((size, size), np.uint8)
    for _ in range(6):  # rectangles of classes 1-4 on background: smooth images that compress like photographs
        top, left = rng.integers(0, size - size // 8, 2)
        height, width = rng.integers(size // 8, size // 2, 2)
        labels[top:top + height, left:left + width] = rng.integers(1, CLASSES)
    colours = rng.integers(0, 255, (CLASSES, 3)).astype(np.uint8)
    image = cv2.GaussianBlur(colours[labels], (5, 5), 0)
    cv2.imwrite(str(folder / "images" / f"{index:05d}.png"), image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    cv2.imwrite(str(folder / "masks" / f"{index:05d}.png"), labels, [cv2.IMWRITE_PNG_COMPRESSION, 1])


def generate(folder: Path, count: int, size: int) -> float:
    """``count`` image/mask pairs at ``size`` px in ``folder`` (kept for the next run); seconds spent."""
    marker = folder / f"generated-{count}-{size}.txt"
    if marker.is_file():
        return 0.0
    started = time.perf_counter()
    for sub in ("images", "masks"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor() as pool:
        list(pool.map(_write_pair, [(folder, index, size) for index in range(count)], chunksize=64))
    marker.write_text("complete\n")
    return time.perf_counter() - started


def _config(folder: Path, size: int):
    from searchseg.spaces.config import TrialConfig

    return TrialConfig(data=str(folder), image_size=size, arch="unet", encoder="resnet18", encoder_weights="none",
                       batch_size=8, device="cpu", threads=1)


def driver(folder: Path, size: int, decoded_into: Path | None) -> dict:
    """Decode in this process (one path), as a search's driver does."""
    from searchseg.data import load_from_config

    with MemoryPeaks() as peaks:
        started = time.perf_counter()
        data = load_from_config(_config(folder, size), progress=False, decoded_into=decoded_into)
        seconds = time.perf_counter() - started
        shipped = len(pickle.dumps(data, protocol=5))
        started = time.perf_counter()
        fingerprint = data.fingerprint  # read once per run for run.json: every decoded byte
        fingerprint_seconds = time.perf_counter() - started
    return {"seconds": seconds, "fingerprint": fingerprint, "fingerprint_seconds": fingerprint_seconds, **peaks.gib(),
            "object_store_gib": shipped / GIB, "images": len(data.images)}


def _first_batch(data_ref: list, folder: str, size: int) -> dict:
    """A trial's start: the data from the object store, a Trainer, the first training batch."""
    import ray
    import torch

    from searchseg.training.engine import Trainer

    torch.set_num_threads(1)
    with MemoryPeaks() as peaks:
        started = time.perf_counter()
        data = ray.get(data_ref[0])
        trainer = Trainer(_config(Path(folder), size), data)
        images, _ = next(iter(trainer.train_loader))
        seconds = time.perf_counter() - started
    return {"seconds_to_first_batch": seconds, **peaks.gib(), "batch": list(images.shape)}


def workers(folder: Path, size: int, decoded_into: Path, trials: int) -> list[dict]:
    """``trials`` tasks of one CPU each, given the mapped dataset through Ray's object store."""
    import ray

    from searchseg.data import load_from_config

    data = load_from_config(_config(folder, size), progress=False, decoded_into=decoded_into)
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(num_cpus=trials, include_dashboard=False, log_to_driver=False)
    try:
        ref = ray.put(data)
        task = ray.remote(num_cpus=1)(_first_batch)
        return ray.get([task.remote([ref], str(folder), size) for _ in range(trials)])
    finally:
        if started_here:
            ray.shutdown()


def _in_fresh_process(phase: str, folder: Path, size: int, decoded_into: Path | None) -> dict:
    command = [sys.executable, "-m", "benchmarks.scale", "--phase", phase, "--folder", str(folder), "--size",
               str(size)] + (["--decoded", str(decoded_into)] if decoded_into else [])
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=Path(__file__).parents[1])
    if result.returncode:
        raise RuntimeError(f"{phase} failed: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure(folder: Path, count: int, size: int, trials: int) -> dict:
    generated = generate(folder, count, size)
    decoded = folder / "decoded"
    for name in ("decoded.json", "images.npy", "masks.npy"):  # decode afresh: a kept folder would only be opened
        (decoded / name).unlink(missing_ok=True)
    mapped = _in_fresh_process("driver", folder, size, decoded)
    in_memory = _in_fresh_process("driver", folder, size, None)
    reopened = _in_fresh_process("driver", folder, size, decoded)
    return {"images": count, "size": size, "generated_seconds": generated,
            "decoded_gib": sum(f.stat().st_size for f in decoded.glob("*.npy")) / GIB,
            "driver": {"mapped": mapped, "in_memory": in_memory, "reopened": reopened},
            "workers": workers(folder, size, decoded, trials)}


def table(row: dict) -> str:
    driver = row["driver"]
    lines = [f"{row['images']} images at {row['size']} px; decoded files {row['decoded_gib']:.2f} GiB",
             "| process | seconds | fingerprint s | peak private GiB | peak file-backed GiB | object store GiB |",
             "|---|---|---|---|---|---|"]
    for name, label in (("in_memory", "driver, decoded into memory"), ("mapped", "driver, decoded into files"),
                        ("reopened", "driver, files opened again (--resume)")):
        d = driver[name]
        lines.append(f"| {label} | {d['seconds']:.1f} | {d['fingerprint_seconds']:.1f} | {d['private_gib']:.2f} | "
                     f"{d['file_backed_gib']:.2f} | {d['object_store_gib']:.3f} |")
    for index, w in enumerate(row["workers"]):
        lines.append(f"| trial task {index + 1}: to its first batch | {w['seconds_to_first_batch']:.1f} | | "
                     f"{w['private_gib']:.2f} | {w['file_backed_gib']:.2f} | |")
    ratio = driver["mapped"]["private_gib"] / max(driver["in_memory"]["private_gib"], 1e-9)
    lines.append(f"driver's peak private memory, files / memory: {ratio:.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--trials", type=int, default=2, help="trial tasks that start at once")
    parser.add_argument("--folder", type=Path, default=Path("/tmp/searchseg-scale"),
                        help="where the generated images are written and kept")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--phase", choices=["driver"], help=argparse.SUPPRESS)
    parser.add_argument("--decoded", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase == "driver":
        print(json.dumps(driver(args.folder, args.size, args.decoded)))
        return
    started = datetime.now().isoformat(timespec="seconds")
    row = {"commit": commit(), "started": started, **measure(args.folder, args.images, args.size, args.trials)}
    print(table(row))
    rows = json.loads(args.output.read_text()) if args.output.is_file() else []
    args.output.write_text(json.dumps([*rows, row], indent=1) + "\n")


if __name__ == "__main__":
    main()
