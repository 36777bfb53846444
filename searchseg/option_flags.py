"""``run``'s flags, made from the option records' fields (``options.Flag``), as ``config_help`` lists the trial
keys from ``TrialConfig``: a field added to ``SearchConfig``, ``ResourceConfig`` or ``OutputConfig`` gets its flag,
its help and its parsing from where it is declared, and the record is built back from the parsed arguments.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, TypeVar

from searchseg.options import Flag

Record = TypeVar("Record")


def _flag(field: dataclasses.Field) -> Flag | None:
    return field.metadata.get("flag")


def add_flags(group: argparse._ArgumentGroup, record: type) -> None:
    """One flag per field of ``record`` that declares one; a flag not given leaves the field at its default."""
    for field in dataclasses.fields(record):
        flag = _flag(field)
        if flag is None:
            continue
        if flag.sets:
            switches = group.add_mutually_exclusive_group() if len(flag.sets) > 1 else group
            for name, (value, help_text) in flag.sets.items():
                switches.add_argument(name, dest=field.name, action="store_const", const=value,
                                      default=argparse.SUPPRESS, help=help_text)
            continue
        choices = [member.value for member in flag.names] if flag.names else None
        typed: dict[str, Any] = {"type": flag.parse} if flag.parse and not choices else {}
        group.add_argument(flag.name or "--" + field.name.replace("_", "-"), dest=field.name, choices=choices,
                           metavar=flag.metavar, nargs="+" if flag.many else None,
                           action="extend" if flag.many else "store", default=argparse.SUPPRESS, help=flag.help,
                           **typed)


def record_from_flags(record: type[Record], args: argparse.Namespace) -> Record:
    """``record`` with the fields whose flags were given; names typed for an enum become its members."""
    given: dict[str, Any] = {}
    for field in dataclasses.fields(record):  # type: ignore[arg-type]
        flag = _flag(field)
        if flag is None or not hasattr(args, field.name):
            continue
        value = getattr(args, field.name)
        if flag.names:
            value = [flag.names(item) for item in value] if flag.many else flag.names(value)
        given[field.name] = value
    return record(**given)
