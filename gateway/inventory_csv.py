"""The device inventory as the CSV a school keeps: read (import) and write (export).

Excel on a Chinese Windows saves CSV as GB18030 (its "ANSI" code page 936), elsewhere as UTF-8
with or without a BOM; headers may be the English field names or their zh-CN titles. Each row
becomes a `DeviceSpec`; an error names the spreadsheet's row number and column.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from analytics.devices import DeviceSpec
from analytics.records import DeviceKind


class InventoryCsvError(Exception):
    """A CSV the inventory cannot be read from; the message names row and column."""


@dataclass(frozen=True)
class Column:
    field: str
    title_zh: str
    aliases: tuple[str, ...] = ()


# In export order. `thresholds` and `gb26875` hold `key=value` pairs separated by `;`, and
# `covers_zones` (a camera's zones) names separated by `;`.
COLUMNS: tuple[Column, ...] = (
    Column("id", "设备编号", ("设备id", "编号")),
    Column("kind", "设备类型", ("类型",)),
    Column("name", "设备名称", ("名称",)),
    Column("building", "楼栋", ("建筑",)),
    Column("floor", "楼层"),
    Column("zone", "房间/区域", ("房间", "区域", "位置")),
    Column("x", "平面图X", ("x坐标",)),
    Column("y", "平面图Y", ("y坐标",)),
    Column("protocol", "协议"),
    Column("model", "型号"),
    Column("payload_shape", "报文格式"),
    Column("reporting_interval_s", "上报间隔(秒)", ("上报间隔",)),
    Column("responsible", "责任人"),
    Column("thresholds", "阈值"),
    Column("gb26875", "消防主机点位"),
    Column("covers_zones", "覆盖区域", ("监控区域",)),
    Column("gb28181_id", "国标编码", ("国标id", "gb28181编码")),
)
_PAIR_FIELDS = ("thresholds", "gb26875")
_LIST_FIELDS = ("covers_zones",)

# zh-CN names for the kinds, as a school's list would write them; the English values work too.
KIND_TITLES_ZH: dict[DeviceKind, str] = {
    DeviceKind.SMOKE: "烟感",
    DeviceKind.TEMPERATURE: "温感",
    DeviceKind.ELECTRICAL_FIRE: "电气火灾",
    DeviceKind.PANIC: "一键报警",
    DeviceKind.GATE: "门禁",
    DeviceKind.CHEM_CABINET: "危化品柜",
    DeviceKind.CAMERA: "摄像头",
    DeviceKind.FIRE_PANEL: "消防主机",
}
_KIND_BY_TITLE = {title: kind.value for kind, title in KIND_TITLES_ZH.items()}

Headers = Literal["en", "zh-CN"]


def _header_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for column in COLUMNS:
        for name in (column.field, column.title_zh, *column.aliases):
            names[_normal(name)] = column.field
    return names


def _normal(header: str) -> str:
    return header.strip().lower().replace("（", "(").replace("）", ")").replace(" ", "")


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), else GB18030: what Excel writes on a Chinese Windows."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise InventoryCsvError(f"byte {exc.start}: neither UTF-8 nor GB18030 text") from None


def _letter(index: int) -> str:
    """The spreadsheet's column letter: 0 -> A, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _pairs(text: str, where: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.replace("；", ";").split(";"))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InventoryCsvError(f"{where}: expected key=value pairs separated by ';', got {item!r}")
        pairs[key.strip()] = value.strip()
    return pairs


def parse(data: bytes) -> list[DeviceSpec]:
    """The devices of a CSV file's bytes; raises InventoryCsvError naming row and column."""
    rows = list(csv.reader(io.StringIO(decode(data), newline="")))
    if not rows:
        raise InventoryCsvError("the file is empty; the first row must name the columns")
    known = _header_names()
    fields: list[str] = []
    for index, header in enumerate(rows[0]):
        field = known.get(_normal(header))
        where = f"row 1, column {_letter(index)} ({header!r})"
        if field is None:
            if not header.strip():
                raise InventoryCsvError(f"{where}: a column without a name")
            allowed = ", ".join(f"{c.field}/{c.title_zh}" for c in COLUMNS)
            raise InventoryCsvError(f"{where}: unknown column (expected one of {allowed})")
        if field in fields:
            raise InventoryCsvError(f"{where}: the column {field} appears twice")
        fields.append(field)
    for required in ("id", "kind"):
        if required not in fields:
            column = next(c for c in COLUMNS if c.field == required)
            raise InventoryCsvError(f"row 1: no {required} column ({column.field} or {column.title_zh})")
    devices: list[DeviceSpec] = []
    first_row: dict[str, int] = {}
    for number, cells in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue  # blank lines between blocks of a hand-kept list
        if len(cells) > len(fields):
            raise InventoryCsvError(
                f"row {number}, column {_letter(len(fields))}: a value beyond the last column"
            )
        device = _device(number, fields, cells)
        if device.id in first_row:
            raise InventoryCsvError(
                f"row {number}, column {_letter(fields.index('id'))} (id): {device.id!r} is already on row "
                f"{first_row[device.id]}"
            )
        first_row[device.id] = number
        devices.append(device)
    return devices


def _device(number: int, fields: Sequence[str], cells: Sequence[str]) -> DeviceSpec:
    raw: dict[str, Any] = {}
    for index, (field, cell) in enumerate(zip(fields, cells, strict=False)):
        value = cell.strip()
        if not value:
            continue
        if field in _PAIR_FIELDS:
            raw[field] = _pairs(value, f"row {number}, column {_letter(index)} ({field})")
        elif field in _LIST_FIELDS:
            raw[field] = [item.strip() for item in value.replace("；", ";").split(";") if item.strip()]
        elif field == "kind":
            raw[field] = _KIND_BY_TITLE.get(value, value)
        else:
            raw[field] = value
    try:
        return DeviceSpec.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        column = f", column {_letter(fields.index(field))} ({field})" if field in fields else ""
        key = ".".join(str(part) for part in error["loc"][1:])
        message = error["msg"].removeprefix("Value error, ")
        shown = f" (got {error['input']!r})" if isinstance(error.get("input"), str | int | float) else ""
        raise InventoryCsvError(
            f"row {number}{column}: {key + ': ' if key else ''}{message}{shown}"
        ) from None


def render(devices: Iterable[DeviceSpec], headers: Headers = "zh-CN") -> str:
    """The devices as CSV text, one row each, every column present."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.title_zh if headers == "zh-CN" else c.field for c in COLUMNS])
    for device in devices:
        data = device.model_dump(mode="json", exclude_defaults=True)
        row = []
        for column in COLUMNS:
            value = data.get(column.field, "")
            if column.field in _PAIR_FIELDS and value:
                value = "; ".join(f"{key}={item}" for key, item in value.items())
            elif column.field in _LIST_FIELDS:
                value = "; ".join(value)
            row.append("" if value is None else str(value))
        writer.writerow(row)
    return out.getvalue()


@dataclass(frozen=True)
class InventoryChanges:
    added: list[DeviceSpec]
    changed: list[tuple[DeviceSpec, DeviceSpec]]
    removed: list[DeviceSpec]

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed)

    def describe(self) -> list[str]:
        lines = [f"+ {d.id} ({d.kind.value}, {d.location})" for d in self.added]
        for old, new in self.changed:
            before, after = old.model_dump(mode="json"), new.model_dump(mode="json")
            diffs = ", ".join(f"{k}: {before[k]!r} -> {after[k]!r}" for k in after if before[k] != after[k])
            lines.append(f"~ {new.id}: {diffs}")
        lines.extend(f"- {d.id} ({d.kind.value}, {d.location})" for d in self.removed)
        return lines


def compare(current: Sequence[DeviceSpec], imported: Sequence[DeviceSpec]) -> InventoryChanges:
    """What replacing `current` with `imported` changes; the CSV is the whole inventory."""
    old = {d.id: d for d in current}
    new_ids = {d.id for d in imported}
    return InventoryChanges(
        added=[d for d in imported if d.id not in old],
        changed=[(old[d.id], d) for d in imported if d.id in old and old[d.id] != d],
        removed=[d for d in current if d.id not in new_ids],
    )
