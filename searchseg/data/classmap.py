"""Class maps: class names, optional mask colours, and what to ignore.

Accepted files (JSON, YAML, or CSV with ``name,r,g,b`` columns like the ``class_dict.csv`` of CamVid and DeepGlobe):

- ``{"classes": [{"name": "Road", "color": "#6EC1E4", "index": 2}, ...], "ignore": [{"color": "#000000"}]}``
  (``title`` is read as ``name``, so Supervisely-style ``classes.json`` files load too);
- a plain list of such class entries, or a ``{name: colour}`` mapping;
- for index masks, names without colours; ``ignore_index`` may be set (default 255).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from searchseg.errors import UserError
from searchseg.palette import rgb_to_hex

RGB = tuple[int, int, int]
DEFAULT_IGNORE_INDEX = 255


@dataclass(frozen=True)
class ClassMap:
    """Names of the classes in index order; colours when masks are RGB colour images."""

    names: tuple[str, ...]
    colors: tuple[RGB, ...] | None = None
    ignore_colors: tuple[RGB, ...] = ()
    ignore_index: int = DEFAULT_IGNORE_INDEX

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def to_dict(self) -> dict:
        classes = [{"index": i, "name": n} for i, n in enumerate(self.names)]
        if self.colors:
            for entry, color in zip(classes, self.colors, strict=True):
                entry["color"] = rgb_to_hex(color)
        return {
            "classes": classes,
            "ignore": [{"color": rgb_to_hex(c)} for c in self.ignore_colors],
            "ignore_index": self.ignore_index,
        }


def parse_color(value: object, where: str) -> RGB:
    """Parse ``#RRGGBB``, ``RRGGBB`` or ``[r, g, b]`` into an RGB tuple."""
    if isinstance(value, str):
        text = value.strip().lstrip("#")
        if len(text) == 6:
            try:
                return (int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16))
            except ValueError:
                pass
    elif isinstance(value, (list, tuple)) and len(value) == 3 and all(isinstance(v, int) for v in value):
        if all(0 <= v <= 255 for v in value):
            return (value[0], value[1], value[2])
    raise UserError(f"{where}: colour {value!r} is not '#RRGGBB' or [r, g, b] with values 0-255")


def load_class_map(path: str | Path) -> ClassMap:
    """Read a class map file; any problem is a UserError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"class map {path} does not exist; pass an existing JSON, YAML or CSV file")
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".csv":
            return class_map_from_obj(_csv_classes(text, path), str(path))
        raw = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError) as err:
        first_line = str(err).splitlines()[0]
        raise UserError(f"class map {path} does not parse: {first_line}") from None
    return class_map_from_obj(raw, str(path))


def _csv_classes(text: str, path: Path) -> list[dict]:
    """Class entries from a ``name,r,g,b`` table, one row per class in index order."""
    rows = list(csv.DictReader(io.StringIO(text)))
    columns = {column.strip().lower(): column for column in (rows[0] if rows else {})}
    if not {"name", "r", "g", "b"} <= columns.keys():
        raise UserError(f"class map {path}: a CSV class map needs the columns name,r,g,b; it has "
                        f"{', '.join(columns) or 'none'}")
    entries = []
    for line, row in enumerate(rows, start=2):
        try:
            color = [int(row[columns[channel]]) for channel in "rgb"]
        except (TypeError, ValueError):
            raise UserError(f"class map {path}, line {line}: r, g and b must be whole numbers 0-255") from None
        entries.append({"name": (row[columns["name"]] or "").strip(), "color": color})
    return entries


def class_map_from_obj(raw: object, where: str) -> ClassMap:
    ignore_raw: list = []
    ignore_index = DEFAULT_IGNORE_INDEX
    if isinstance(raw, dict) and "classes" in raw:
        entries = raw["classes"]
        ignore_raw = raw.get("ignore") or []
        ignore_index = raw.get("ignore_index", DEFAULT_IGNORE_INDEX)
    elif isinstance(raw, dict):
        entries = [{"name": name, "color": color} for name, color in raw.items()]
    else:
        entries = raw
    if not isinstance(entries, list) or not entries:
        raise UserError(f"class map {where}: expected a non-empty list of classes under 'classes'")
    if not isinstance(ignore_index, int) or not 0 <= ignore_index <= 255:
        raise UserError(f"class map {where}: ignore_index must be an integer 0-255, got {ignore_index!r}")

    parsed = []
    for position, entry in enumerate(entries):
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, dict):
            raise UserError(f"class map {where}: class #{position} must be a mapping with a name")
        name = entry.get("name", entry.get("title"))
        if not isinstance(name, str) or not name:
            raise UserError(f"class map {where}: class #{position} has no 'name'")
        index = entry.get("index", position)
        if not isinstance(index, int) or isinstance(index, bool):
            raise UserError(f"class map {where}: class {name!r} has index {index!r}; write it as a whole number "
                            "without quotes")
        color = parse_color(entry["color"], f"class map {where}, class {name!r}") if "color" in entry else None
        parsed.append((index, name, color))

    indices = sorted(index for index, _, _ in parsed)
    if indices != list(range(len(parsed))):
        raise UserError(f"class map {where}: class indices must be 0..{len(parsed) - 1} without gaps, got {indices}")
    parsed.sort(key=lambda item: item[0])
    colors = [color for _, _, color in parsed]
    if any(c is None for c in colors) and any(c is not None for c in colors):
        raise UserError(f"class map {where}: either every class has a colour or none does")
    has_colors = colors[0] is not None
    if has_colors and len(set(colors)) != len(colors):
        raise UserError(f"class map {where}: two classes share one colour")

    ignore_colors = []
    for entry in ignore_raw:
        value = entry.get("color") if isinstance(entry, dict) else entry
        ignore_colors.append(parse_color(value, f"class map {where}, ignore"))
        if has_colors and ignore_colors[-1] in colors:
            name = parsed[colors.index(ignore_colors[-1])][1]
            raise UserError(f"class map {where}: ignore colour {rgb_to_hex(ignore_colors[-1])} is also the colour "
                            f"of class {name!r}, whose pixels would never be trained; remove one of them")
    if len(parsed) >= ignore_index:
        raise UserError(f"class map {where}: {len(parsed)} classes collide with ignore_index {ignore_index}")
    return ClassMap(
        names=tuple(name for _, name, _ in parsed),
        colors=tuple(colors) if has_colors else None,  # type: ignore[arg-type]
        ignore_colors=tuple(ignore_colors),
        ignore_index=ignore_index,
    )
