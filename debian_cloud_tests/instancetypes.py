"""The instance-type table: what an instance type promises beyond its shape (GPUs, a network
throughput floor), per provider, for the suites that hold an image to it.

The shipped table (`data/instance-types.toml`) is merged with the user's files (`--instance-types`,
repeatable): an entry given again replaces the earlier one whole, so a user's entry says every key
it needs.  A table is read completely at configure time; a malformed entry is one line naming the
file, the line and the entry (InstanceTypeTableError, exit 37), before anything boots.

    [aws."g4dn.xlarge"]
    gpus = 1
    gpu_vendor = "10de"         # PCI vendor id, as /sys/bus/pci/devices/*/vendor says it
    gpu_driver = "nvidia"       # the kernel driver every GPU must be bound to
    throughput_floor_mbps = 2000
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import InstanceTypeTableError
from .gate.tomlpos import key_lines, line_of

SHIPPED = Path(__file__).resolve().parent / "data" / "instance-types.toml"


@dataclass(frozen=True)
class InstanceTypeEntry:
    """What one instance type of one provider promises; the defaults promise nothing."""

    gpus: int = 0
    #: the kernel driver the GPUs are bound to (None: any driver)
    gpu_driver: str | None = None
    #: the GPUs' PCI vendor id, four hex digits ("10de": NVIDIA; None: any vendor)
    gpu_vendor: str | None = None
    #: QEMU only: the -device attached once per promised GPU (None: none attached)
    qemu_device: str | None = None
    #: the network throughput, in Mbit/s, below which the instance type fails
    throughput_floor_mbps: float | None = None


KEYS = tuple(f.name for f in fields(InstanceTypeEntry))


@dataclass(frozen=True)
class Table:
    """Entries by (provider, instance type), and the file each came from."""

    entries: Mapping[tuple[str, str], InstanceTypeEntry] = field(default_factory=dict)
    sources: Mapping[tuple[str, str], str] = field(default_factory=dict)

    def lookup(self, provider: str, instance_type: str) -> InstanceTypeEntry | None:
        """The entry of *instance_type* on *provider*, or None where the table has none."""
        return self.entries.get((provider, instance_type))

    def source(self, provider: str, instance_type: str) -> str | None:
        """The file the entry was read from (for messages: where to change a promise)."""
        return self.sources.get((provider, instance_type))


def load(extra: Sequence[Path] = ()) -> Table:
    """The shipped table, then each of *extra* in order, later entries replacing earlier ones."""
    entries: dict[tuple[str, str], InstanceTypeEntry] = {}
    sources: dict[tuple[str, str], str] = {}
    for path in (SHIPPED, *extra):
        try:
            source = Path(path).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise InstanceTypeTableError(f"--instance-types {path}: {reason}") from None
        for key, entry in parse(source, str(path)).items():
            entries[key], sources[key] = entry, str(path)
    return Table(entries, sources)


def parse(source: str, where: str) -> dict[tuple[str, str], InstanceTypeEntry]:
    """Every entry of one table file; the first malformed one raises, naming its line."""
    try:
        doc = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        problem = re.sub(r"\s*\(at line.*?\)", "", str(exc))
        raise InstanceTypeTableError(f"{where}:{found.group(1) if found else '?'}: invalid TOML: "
                                     f"{problem}; write [PROVIDER.\"INSTANCE TYPE\"] tables of "
                                     f"{', '.join(KEYS)}") from None
    lines = key_lines(source)

    def fail(path: tuple[str, ...], problem: str) -> InstanceTypeTableError:
        line = line_of(lines, path)  # type: ignore[arg-type]
        entry = f"[{path[0]}.\"{path[1]}\"] " if len(path) > 1 else f"[{path[0]}] "
        return InstanceTypeTableError(f"{where}:{line or '?'}: {entry}{problem}")

    table: dict[tuple[str, str], InstanceTypeEntry] = {}
    for provider, types in doc.items():
        if not isinstance(types, dict):
            raise fail((provider,), f"is {_show(types)}: a provider's section holds one table "
                       "per instance type, [PROVIDER.\"INSTANCE TYPE\"]")
        for name, raw in types.items():
            if not isinstance(raw, dict):
                raise fail((provider, name), f"is {_show(raw)}: an instance type is a table of "
                           f"{', '.join(KEYS)}")
            table[(provider, name)] = _entry(raw, lambda key, problem, p=(provider, name):
                                             fail((*p, key), f"{key} = {problem}"))
    return table


def _entry(raw: Mapping[str, Any], fail: Any) -> InstanceTypeEntry:
    """One entry, every key checked; *fail(key, problem)* makes the error to raise."""
    for key in raw:
        if key not in KEYS:
            raise fail(key, f"{_show(raw[key])}: unknown key {key!r}; valid keys: {', '.join(KEYS)}")
    gpus = raw.get("gpus", 0)
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0:
        raise fail("gpus", f"{_show(gpus)}: give a whole number of GPUs, 0 or more")
    for key in ("gpu_driver", "qemu_device"):
        text = raw.get(key)
        if text is not None and (not isinstance(text, str) or not text.strip()):
            raise fail(key, f"{_show(text)}: give a name in quotes, e.g. "
                       + ('"nvidia"' if key == "gpu_driver" else '"bochs-display"'))
    vendor = raw.get("gpu_vendor")
    if vendor is not None and (not isinstance(vendor, str)
                               or not re.fullmatch(r"(0x)?[0-9a-fA-F]{4}", vendor)):
        raise fail("gpu_vendor", f"{_show(vendor)}: give the PCI vendor id as four hex digits in "
                   "quotes, e.g. \"10de\"")
    floor = raw.get("throughput_floor_mbps")
    if floor is not None and (isinstance(floor, bool) or not isinstance(floor, int | float)
                              or not floor > 0 or floor == float("inf")):
        raise fail("throughput_floor_mbps", f"{_show(floor)}: give a positive number of Mbit/s")
    return InstanceTypeEntry(
        gpus=gpus, gpu_driver=raw.get("gpu_driver"),
        gpu_vendor=vendor.lower().removeprefix("0x") if vendor else None,
        qemu_device=raw.get("qemu_device"),
        throughput_floor_mbps=float(floor) if floor is not None else None)


def _show(value: Any) -> str:
    """A TOML value as the user wrote it, near enough for a message."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return str(value)
