"""Data checks: what is wrong with a dataset before a search burns hours on it.

``quick_check`` reads only file headers and tails (milliseconds per file): pairing, unreadable,
truncated and mis-sized files. ``run``, ``trial`` and ``retrain`` call it before decoding.
``full_check`` also decodes every mask at full resolution: colours or values outside the class
map with pixel counts and example files, classes that never occur, class frequencies and
per-image presence, image sizes and modes, the memory of the decoded dataset, class weights.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from searchseg.data.balance import median_frequency_weights
from searchseg.data.classmap import ClassMap, load_class_map
from searchseg.data.codecs import detect_codec, pack_rgb
from searchseg.data.io import DataError, read_mask
from searchseg.data.pairing import Pair, Pairing, find_pairs
from searchseg.data.spec import DatasetSpec
from searchseg.io_utils import atomic_write
from searchseg.machine import available_cpus
from searchseg.palette import rgb_to_hex

SIGNATURES = {b"\x89PNG": "png", b"\xff\xd8": "jpeg", b"II*\x00": "tiff", b"MM\x00*": "tiff", b"BM": "bmp",
              b"GIF8": "gif"}
EXAMPLES = 3  # example files listed per finding


@dataclass
class Finding:
    severity: str  # error | warning
    kind: str
    message: str
    files: list[str] = field(default_factory=list)


@dataclass
class ClassStats:
    """One class over all masks at full resolution."""
    name: str
    pixels: int = 0
    images: int = 0  # masks it occurs in
    presence: float = 0.0  # share of masks it occurs in
    frequency: float = 0.0  # share of the counted pixels
    suggested_weight: float = 0.0  # weighted-CE weight by median frequency


@dataclass
class MemoryEstimate:
    image_size: int
    bytes: int  # the decoded dataset: images plus uint8 masks


@dataclass
class DataStats:
    """What the check measured; ``None`` where the check stopped before measuring it."""
    image_modes: dict[str, int] = field(default_factory=dict)
    mask_modes: dict[str, int] = field(default_factory=dict)
    image_sizes: dict[str, int] = field(default_factory=dict)  # "WxH" -> images, the most common first
    pairing: str | None = None  # how file names paired: "by file stem", or the suffixes found
    mask_codec: str | None = None
    class_map: str | None = None
    classes: list[ClassStats] = field(default_factory=list)
    ignored_pixels: int | None = None
    unknown_pixels: int | None = None
    memory: MemoryEstimate | None = None


@dataclass
class CheckReport:
    source: str
    pairs: int
    findings: list[Finding] = field(default_factory=list)
    stats: DataStats = field(default_factory=DataStats)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    def add(self, severity: str, kind: str, message: str, files=()) -> None:
        self.findings.append(Finding(severity, kind, message, [str(f) for f in files]))

    def summary_line(self) -> str:
        kinds = Counter(f.kind for f in self.errors)
        listed = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in kinds.most_common())
        return f"{len(self.errors)} data errors in {self.source} ({listed})"

    def to_dict(self) -> dict:
        return {"source": self.source, "pairs": self.pairs, "errors": len(self.errors), "warnings": len(self.warnings),
                "findings": [asdict(f) for f in self.findings], "stats": asdict(self.stats)}


def sniff(path: Path) -> tuple[str | None, str | None]:
    """(format, problem) from a file's first and last bytes: zero bytes, not an image, or truncated."""
    size = path.stat().st_size
    if size == 0:
        return None, "zero bytes"
    with path.open("rb") as handle:
        head = handle.read(16)
        handle.seek(max(size - 32, 0))
        tail = handle.read()
    kind = next((k for sig, k in SIGNATURES.items() if head.startswith(sig)), None)
    if kind is None and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        kind = "webp"
    if kind is None:
        return None, "not an image (unrecognised content)"
    if kind == "jpeg" and not tail.rstrip(b"\x00").endswith(b"\xff\xd9"):
        return kind, "truncated JPEG (no end-of-image marker)"
    if kind == "png" and b"IEND" not in tail:
        return kind, "truncated PNG (no IEND chunk)"
    return kind, None


def header(path: Path) -> tuple[tuple[int, int] | None, str | None, str | None]:
    """((width, height), mode, problem) without decoding pixels."""
    kind, problem = sniff(path)
    if problem:
        return None, None, problem
    try:
        with Image.open(path) as image:
            return image.size, image.mode, None
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as err:
        return None, None, f"unreadable {kind} header ({err})"


def _same_aspect(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return abs(a[0] / a[1] - b[0] / b[1]) <= 0.01 * a[0] / a[1]


def _pairing_findings(report: CheckReport, pairing: Pairing) -> None:
    for paths in pairing.duplicate_stems:
        report.add("error", "duplicate_name", f"{len(paths)} files share the name {paths[0].stem!r}; rename so each "
                   "mask has one image", paths)
    if pairing.images_without_masks:
        report.add("warning", "image_without_mask", f"{len(pairing.images_without_masks)} images have no mask and "
                   "are left out", pairing.images_without_masks)
    if pairing.masks_without_images:
        report.add("warning", "mask_without_image", f"{len(pairing.masks_without_images)} masks have no image",
                   pairing.masks_without_images)


def quick_check(spec: DatasetSpec, fix_mask_size: bool = False) -> tuple[CheckReport, list[Pair]]:
    """Pairing and per-file header problems. Returns the report and the pairs that passed."""
    pairing = find_pairs(spec.path, spec.layout, spec.mask_suffix)
    report = CheckReport(str(spec.path), len(pairing.pairs))
    report.stats.pairing = pairing.rule or None
    _pairing_findings(report, pairing)
    if not pairing.pairs:
        report.add("error", "no_pairs", f"no image/mask pairs found in {spec.path}; see docs/data.md for the layouts")
    good: list[Pair] = []
    image_modes: Counter[str] = Counter()
    mask_modes: Counter[str] = Counter()
    sizes: Counter[tuple[int, int]] = Counter()
    for pair in pairing.pairs:
        image_size, image_mode, image_problem = header(pair.image)
        mask_size, mask_mode, mask_problem = header(pair.mask)
        for path, problem in ((pair.image, image_problem), (pair.mask, mask_problem)):
            if problem:
                report.add("error", "unreadable_file", f"{path}: {problem}", [path])
        if image_problem or mask_problem or image_size is None or mask_size is None or image_mode is None \
                or mask_mode is None:
            continue
        if image_size != mask_size:
            if fix_mask_size and _same_aspect(image_size, mask_size):
                _resize_mask_file(pair.mask, image_size)
                report.add("warning", "mask_resized", f"{pair.mask}: resized from {mask_size[0]}x{mask_size[1]} to "
                           f"{image_size[0]}x{image_size[1]} (nearest); original kept as .orig", [pair.mask])
            else:
                hint = (" (same aspect ratio: --fix-mask-size resizes it)" if _same_aspect(image_size, mask_size)
                        else " (different aspect ratio: a misaligned pair?)")
                report.add("error", "size_mismatch", f"{pair.image.name} is {image_size[0]}x{image_size[1]} but "
                           f"{pair.mask} is {mask_size[0]}x{mask_size[1]}{hint}", [pair.image, pair.mask])
                continue
        image_modes[image_mode] += 1
        mask_modes[mask_mode] += 1
        sizes[image_size] += 1
        good.append(pair)
    report.stats.image_modes, report.stats.mask_modes = dict(image_modes), dict(mask_modes)
    report.stats.image_sizes = {f"{w}x{h}": n for (w, h), n in sizes.most_common()}
    for mode, meaning in (("L", "greyscale (repeated to 3 channels; in_channels=1 keeps one)"),
                          ("RGBA", "RGBA (alpha is dropped)"), ("I;16", "16-bit (stretched to 8 bits per image)")):
        if image_modes.get(mode):
            report.add("warning", "image_mode", f"{image_modes[mode]} images are {meaning}")
    return report, good


def _resize_mask_file(path: Path, size: tuple[int, int]) -> None:
    backup = path.with_name(path.name + ".orig")
    if not backup.exists():
        backup.write_bytes(path.read_bytes())
    with Image.open(path) as mask:
        mask.load()
        resized = mask.resize(size, Image.Resampling.NEAREST)
    atomic_write(path, lambda tmp: resized.save(tmp, format=mask.format or "PNG"))


def _mask_values(pair: Pair, codec: str) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values or packed colours, their pixel counts) of one mask at full resolution."""
    raw = read_mask(pair.mask, as_rgb=codec == "colour")
    values = pack_rgb(raw) if codec == "colour" else raw
    return np.unique(values, return_counts=True)


def _unpack(code: int) -> tuple[int, int, int]:
    return (code >> 16) & 255, (code >> 8) & 255, code & 255


def scan_masks(pairs: list[Pair], codec: str, progress: bool) -> tuple[Counter, dict, dict]:
    """Pixel counts of every value/colour over all masks, example files of each, and per-mask presence."""
    totals: Counter = Counter()
    examples: dict[int, list[str]] = defaultdict(list)
    presence: Counter = Counter()
    with ThreadPoolExecutor(min(8, available_cpus())) as pool:
        scans = pool.map(lambda p: (p, _mask_values(p, codec)), pairs)
        for pair, (values, counts) in tqdm(scans, total=len(pairs), desc="scanning masks", unit="mask",
                                           disable=not progress, leave=False):
            for value, count in zip(values.tolist(), counts.tolist(), strict=True):
                totals[value] += count
                presence[value] += 1
                if len(examples[value]) < EXAMPLES:
                    examples[value].append(str(pair.mask))
    return totals, examples, presence


def full_check(spec: DatasetSpec, image_size: int = 256, in_channels: int = 3, fix_mask_size: bool = False,
               progress: bool = True) -> CheckReport:
    """Everything: the quick check, then every mask decoded at full resolution."""
    class_map = load_class_map(spec.class_map) if spec.class_map else None
    report, pairs = quick_check(spec, fix_mask_size)
    if not pairs:
        return report
    try:
        codec = spec.mask_codec if spec.mask_codec != "auto" else detect_codec([p.mask for p in pairs], class_map)
    except DataError as err:
        report.add("error", "needs_class_map", str(err))
        return report
    report.stats.mask_codec = codec
    report.stats.class_map = str(spec.class_map) if spec.class_map else None
    totals, examples, presence = scan_masks(pairs, codec, progress)
    classes = _classify(report, totals, examples, presence, codec, class_map, len(pairs))
    pixels = np.array([c.pixels for c in classes], dtype=np.float64)
    frequencies = pixels / max(pixels.sum(), 1.0)
    for entry, frequency, weight in zip(classes, frequencies, median_frequency_weights(frequencies), strict=True):
        entry.frequency = float(frequency)
        entry.suggested_weight = weight
    report.stats.classes = classes
    channels = in_channels + 1  # image channels plus the uint8 mask
    report.stats.memory = MemoryEstimate(image_size, len(pairs) * image_size * image_size * channels)
    return report


def _classify(report: CheckReport, totals: Counter, examples: dict, presence: Mapping[int, int], codec: str,
              class_map: ClassMap | None, images: int) -> list[ClassStats]:
    """Per-class pixel counts; findings for values outside the map and classes that never occur."""
    describe: Callable[[int], str]
    if codec == "colour":
        assert class_map is not None, "a colour codec is only detected with a class map"
        known = {code: i for i, code in enumerate(pack_rgb(np.array([class_map.colors], np.uint8))[0].tolist())}
        ignored = set(pack_rgb(np.array([class_map.ignore_colors], np.uint8))[0].tolist()) if class_map.ignore_colors \
            else set()
        names = class_map.names

        def describe(value: int) -> str:
            return rgb_to_hex(_unpack(value))
    else:
        ignore_index = class_map.ignore_index if class_map else 255
        if codec == "binary":
            names = ("background", "foreground")
            known = {value: (1 if value else 0) for value in totals}
        else:
            names = class_map.names if class_map else tuple(
                f"class_{i}" for i in range(max((v for v in totals if v != ignore_index), default=0) + 1))
            known = {i: i for i in range(len(names))}
        ignored = {ignore_index} if codec != "binary" else set()
        describe = str
    unknown = [v for v in totals if v not in known and v not in ignored]
    for value in sorted(unknown, key=lambda v: -totals[v]):
        report.add("error", "unknown_colour" if codec == "colour" else "unknown_value",
                   f"mask {'colour' if codec == 'colour' else 'value'} {describe(value)} is not in the class map: "
                   f"{totals[value]} px in {presence[value]} masks", examples[value])
    classes = [ClassStats(name) for name in names]
    for value, index in known.items():
        classes[index].pixels += totals.get(value, 0)
        classes[index].images = max(classes[index].images, presence.get(value, 0))
    for entry in classes:
        entry.presence = entry.images / images
        if entry.pixels == 0:
            report.add("warning", "class_never_occurs", f"class {entry.name!r} never occurs in the masks")
    report.stats.ignored_pixels = int(sum(totals[v] for v in ignored))
    report.stats.unknown_pixels = int(sum(totals[v] for v in unknown))
    return classes


def infer_class_map(spec: DatasetSpec, progress: bool = True) -> list[dict]:
    """Distinct mask colours (or values) with pixel counts, most frequent first: a draft class map."""
    _, pairs = quick_check(spec)
    if not pairs:
        raise DataError(f"no readable image/mask pairs in {spec.path}")
    try:
        read_mask(pairs[0].mask, as_rgb=False)
        codec = "index"
    except DataError:  # a colour mask
        codec = "colour"
    totals, examples, presence = scan_masks(pairs, codec, progress)
    entries = []
    for value, pixels in totals.most_common():
        entry = {"pixels": int(pixels), "masks": int(presence[value]), "example": examples[value][0]}
        entry["color" if codec == "colour" else "value"] = rgb_to_hex(_unpack(value)) if codec == "colour" else value
        entries.append(entry)
    return entries


def draft_class_map(entries: list[dict]) -> dict:
    """A class map file to edit: one class per colour (or value), named class_0, class_1, ..."""
    classes = []
    for index, entry in enumerate(entries):
        item = {"index": index, "name": f"class_{index}", "pixels": entry["pixels"]}
        if "color" in entry:
            item["color"] = entry["color"]
        classes.append(item)
    return {"comment": "Draft from searchseg.check --infer-class-map: rename the classes; move colours to be "
                       "ignored (unannotated gaps) from 'classes' to 'ignore'.",
            "classes": classes, "ignore": []}
