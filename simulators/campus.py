"""A small demo campus: a few buildings with every device kind, as an inventory."""

from __future__ import annotations

from analytics.devices import DeviceSpec
from analytics.records import DeviceKind

K = DeviceKind


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
    return [device.model_copy(update={"reporting_interval_s": 30.0}) for device in devices]
