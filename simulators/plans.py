"""Floor plans for the demo campus: one SVG per building and floor, rooms drawn from the zones.

Each zone of a floor is a room in a row; its devices get inventory x/y inside that room, in the
SVG's viewBox units (the plan's pixels), so the console can put every device on its plan.
"""

from __future__ import annotations

from collections.abc import Iterable
from xml.sax.saxutils import escape

from analytics.devices import DeviceSpec

WIDTH, HEIGHT = 1000, 600
_MARGIN, _ROOM_TOP, _ROOM_BOTTOM = 40, 120, 520


def _floors(devices: Iterable[DeviceSpec]) -> dict[tuple[str, str], dict[str, list[DeviceSpec]]]:
    floors: dict[tuple[str, str], dict[str, list[DeviceSpec]]] = {}
    for device in devices:
        floors.setdefault((device.building, device.floor), {}).setdefault(device.zone, []).append(device)
    return floors


def _room_box(index: int, rooms: int) -> tuple[float, float]:
    """Left edge and width of room `index` of `rooms` across the floor."""
    width = (WIDTH - 2 * _MARGIN) / rooms
    return _MARGIN + index * width, width


def place(devices: list[DeviceSpec]) -> list[DeviceSpec]:
    """The devices with x/y inside their zone's room on their floor's plan."""
    positions: dict[str, tuple[float, float]] = {}
    for zones in _floors(devices).values():
        for index, members in enumerate(zones.values()):
            left, width = _room_box(index, len(zones))
            for n, device in enumerate(members):
                x = left + width * (n + 1) / (len(members) + 1)
                y = (_ROOM_TOP + _ROOM_BOTTOM) / 2 + (40 if n % 2 else -40)
                positions[device.id] = (round(x), round(y))
    return [d.model_copy(update={"x": positions[d.id][0], "y": positions[d.id][1]}) for d in devices]


def demo_plans(devices: list[DeviceSpec]) -> dict[tuple[str, str], bytes]:
    """One SVG plan per (building, floor): the outline and a labelled room per zone."""
    plans = {}
    for (building, floor), zones in _floors(devices).items():
        parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif">',
            f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#f7f8fa"/>',
            f'<text x="{_MARGIN}" y="70" font-size="32" fill="#334">{escape(building)} {escape(floor)}</text>',
        ]
        for index, zone in enumerate(zones):
            left, width = _room_box(index, len(zones))
            parts.append(
                f'<rect x="{left:.0f}" y="{_ROOM_TOP}" width="{width:.0f}" '
                f'height="{_ROOM_BOTTOM - _ROOM_TOP}" fill="#fff" stroke="#667" stroke-width="4"/>'
                f'<text x="{left + 12:.0f}" y="{_ROOM_TOP + 34}" font-size="24" fill="#556">{escape(zone)}</text>'
            )
        parts.append("</svg>")
        plans[(building, floor)] = "".join(parts).encode()
    return plans
