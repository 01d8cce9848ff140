"""A small demo campus: a few buildings with every device kind, as an inventory.

The library's fire-alarm panel reports by GB/T 26875.3 through a user information transmission
device (`DEMO_PANEL_ADDRESS`): its detectors are inventory entries with a `gb26875` panel point.
Every device has floor-plan x/y on the plans of `simulators.plans`.
"""

from __future__ import annotations

from typing import Any

from analytics.devices import DeviceSpec, PanelPoint
from analytics.records import DeviceKind
from simulators.plans import place

K = DeviceKind
DEMO_PANEL_ADDRESS = 889  # the transmission device's source address
DEMO_TRANSMITTER = "lib-uitd"


def demo_campus() -> list[DeviceSpec]:
    devices = [
        DeviceSpec(id="tb-1f-smoke-01", kind=K.SMOKE, name="教学楼1层烟感01", building="教学楼", floor="1F", zone="101教室"),
        DeviceSpec(id="tb-2f-smoke-01", kind=K.SMOKE, name="教学楼2层烟感01", building="教学楼", floor="2F", zone="201教室"),
        DeviceSpec(id="tb-3f-smoke-01", kind=K.SMOKE, name="教学楼3层烟感01", building="教学楼", floor="3F", zone="实验室"),
        DeviceSpec(id="kitchen-smoke-01", kind=K.SMOKE, name="食堂后厨烟感01", building="食堂", floor="1F", zone="kitchen"),
        DeviceSpec(id="kitchen-smoke-02", kind=K.SMOKE, name="食堂后厨烟感02", building="食堂", floor="1F", zone="kitchen"),
        DeviceSpec(id="kitchen-temp-01", kind=K.TEMPERATURE, name="后厨温感01", building="食堂", floor="1F", zone="kitchen"),
        DeviceSpec(id="switchroom-temp-01", kind=K.TEMPERATURE, name="配电室温感", building="综合楼", floor="B1", zone="配电室"),
        DeviceSpec(id="efm-main-01", kind=K.ELECTRICAL_FIRE, name="总配电柜电气火灾监控", building="综合楼", floor="B1", zone="配电室"),
        DeviceSpec(id="panic-gate-01", kind=K.PANIC, name="南门一键报警", building="南门", zone="门卫室"),
        DeviceSpec(id="panic-office-01", kind=K.PANIC, name="校长室一键报警", building="综合楼", floor="3F", zone="校长室"),
        DeviceSpec(id="gate-south", kind=K.GATE, name="南门门禁", building="南门", zone="校门"),
        DeviceSpec(id="gate-north", kind=K.GATE, name="北门门禁", building="北门", zone="校门"),
        DeviceSpec(id="chem-lab-01", kind=K.CHEM_CABINET, name="化学实验室危化品柜", building="实验楼", floor="2F", zone="化学准备室"),
    ]  # fmt: skip
    return place(
        [device.model_copy(update={"reporting_interval_s": 30.0}) for device in devices] + demo_panel()
    )


def demo_panel() -> list[DeviceSpec]:
    """The library's panel: its transmission device, the panel itself and four of its points."""

    def point(address: str, component_type: int) -> PanelPoint:  # address: "zone-position"
        return PanelPoint.model_validate(
            {
                "transmitter": DEMO_TRANSMITTER,
                "system_address": 1,
                "component_type": component_type,
                "component_address": address,
            }
        )

    gb: dict[str, Any] = {"protocol": "gb26875", "building": "图书馆"}
    return [
        DeviceSpec(id=DEMO_TRANSMITTER, kind=K.FIRE_PANEL, name="图书馆用户信息传输装置", floor="1F", zone="消防控制室",
                   reporting_interval_s=30.0, **gb),
        DeviceSpec(id="lib-panel", kind=K.FIRE_PANEL, name="图书馆火灾报警控制器", floor="1F", zone="消防控制室",
                   gb26875=PanelPoint(transmitter=DEMO_TRANSMITTER, system_address=1), **gb),
        DeviceSpec(id="lib-2f-smoke-01", kind=K.SMOKE, name="图书馆2层阅览室烟感", floor="2F", zone="阅览室",
                   gb26875=point("1-1", 40), **gb),
        DeviceSpec(id="lib-3f-smoke-01", kind=K.SMOKE, name="图书馆3层书库烟感", floor="3F", zone="书库",
                   gb26875=point("1-2", 40), **gb),
        DeviceSpec(id="lib-1f-heat-01", kind=K.TEMPERATURE, name="图书馆1层配电间温感", floor="1F", zone="配电间",
                   gb26875=point("1-3", 30), **gb),
        # A manual call point is inventoried as a smoke kind, so its alarm raises fire_alarm.
        DeviceSpec(id="lib-1f-mcp-01", kind=K.SMOKE, name="图书馆1层手动报警按钮", floor="1F", zone="大厅",
                   gb26875=point("2-1", 23), **gb),
    ]  # fmt: skip
