"""Inventory CSV import and export: Excel's encodings, zh-CN or en headers, row/column errors, dry run."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.inventory_csv import COLUMNS, InventoryCsvError, parse, render
from tests.gateway.support import cli

CONFIG = "campus: {id: school-1}\ninventory: inventory.yaml\n"
INVENTORY = "devices:\n  - {id: old-1, kind: smoke}\n  - {id: s1, kind: smoke, zone: '101'}\n"

ZH = "设备编号,设备类型,设备名称,楼栋,楼层,房间/区域,上报间隔(秒),责任人,阈值\r\n" + (
    "s1,烟感,教学楼1层烟感,教学楼,1F,101教室,60,王老师,\r\n"
    "boiler-t1,temperature,锅炉房温感,食堂,B1,锅炉房,30,,heat_high.raise_at=70; heat_high.clear_below=65\r\n"
    "panic-1,一键报警,南门一键报警,南门,,门卫室,,,\r\n"
)
EN = ZH.replace(
    ZH.splitlines()[0], "id,kind,name,building,floor,zone,reporting_interval_s,responsible,thresholds"
)


def school(tmp_path: Path, inventory: str = INVENTORY) -> Path:
    (tmp_path / "inventory.yaml").write_text(inventory, encoding="utf-8")
    (tmp_path / "gateway.yaml").write_text(CONFIG, encoding="utf-8")
    return tmp_path / "gateway.yaml"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
@pytest.mark.parametrize("text", [ZH, EN], ids=["zh-CN headers", "en headers"])
def test_excel_files_in_each_encoding_and_header_language_read_the_same(encoding: str, text: str) -> None:
    devices = parse(text.encode(encoding))
    assert [(d.id, d.kind.value) for d in devices] == [
        ("s1", "smoke"),
        ("boiler-t1", "temperature"),
        ("panic-1", "panic"),
    ]
    assert (
        devices[0].name == "教学楼1层烟感"
        and devices[0].zone == "101教室"
        and devices[0].responsible == "王老师"
    )
    assert devices[1].thresholds == {"heat_high.raise_at": 70.0, "heat_high.clear_below": 65.0}
    assert devices[1].reporting_interval_s == 30.0 and devices[2].reporting_interval_s == 60.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            ZH.replace("烟感,教学楼1层", "doorbell,教学楼1层"),
            "row 2, column B (kind): Input should be 'smoke'",
        ),
        (
            ZH.replace(",30,", ",soon,"),
            "row 3, column G (reporting_interval_s): Input should be a valid number",
        ),
        (ZH.replace("panic-1", "s1"), "row 4, column A (id): 's1' is already on row 2"),
        (
            ZH.replace("设备名称", "备注"),
            "row 1, column C ('备注'): unknown column (expected one of id/设备编号",
        ),
        (
            ZH.replace("设备编号,", "").replace("s1,", "").replace("boiler-t1,", "").replace("panic-1,", ""),
            "row 1: no id column (id or 设备编号)",
        ),
        (
            ZH.replace("heat_high.raise_at=70", "heat_high.raise_at"),
            "row 3, column I (thresholds): expected key=value",
        ),
        (ZH.replace("s1,烟感", "s 1,烟感"), "row 2, column A (id): String should match pattern"),
        (ZH + "x1,smoke,,,,,,,,extra\r\n", "row 5, column J: a value beyond the last column"),
        ("", "the file is empty"),
    ],
)
def test_errors_name_the_row_and_the_column(text: str, expected: str) -> None:
    with pytest.raises(InventoryCsvError) as error:
        parse(text.encode("utf-8"))
    assert expected in str(error.value)


def test_export_then_import_gives_the_same_inventory() -> None:
    devices = parse(ZH.encode())
    for headers in ("zh-CN", "en"):
        assert parse(render(devices, headers).encode("gb18030")) == devices  # type: ignore[arg-type]
    assert render(devices).splitlines()[0] == ",".join(c.title_zh for c in COLUMNS)


def test_a_dry_run_shows_what_changes_and_writes_nothing(tmp_path: Path) -> None:
    config = school(tmp_path)
    (tmp_path / "school.csv").write_bytes(ZH.encode("gb18030"))
    before = (tmp_path / "inventory.yaml").read_bytes()
    result = cli("inventory", "import", str(tmp_path / "school.csv"), "--config", str(config), "--dry-run")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "+ boiler-t1 (temperature, 食堂 B1 锅炉房)" in lines
    assert "+ panic-1 (panic, 南门 门卫室)" in lines
    assert "- old-1 (smoke, old-1)" in lines
    assert any(line.startswith("~ s1: ") and "zone: '101' -> '101教室'" in line for line in lines)
    assert "3 changed" not in result.stdout and "2 added, 1 changed, 1 removed" in result.stdout
    assert (tmp_path / "inventory.yaml").read_bytes() == before


def test_import_writes_the_inventory_the_gateway_loads(tmp_path: Path) -> None:
    config = school(tmp_path)
    (tmp_path / "school.csv").write_bytes(ZH.encode("utf-8-sig"))
    result = cli("inventory", "import", str(tmp_path / "school.csv"), "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout
    loaded = load_config(config, environ={})
    assert [d.id for d in loaded.devices] == ["s1", "boiler-t1", "panic-1"]
    again = cli("inventory", "import", str(tmp_path / "school.csv"), "--config", str(config))
    assert "already matches" in again.stdout
    exported = cli("inventory", "export", "--config", str(config), "--out", str(tmp_path / "out.csv"))
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "out.csv").read_bytes().startswith(b"\xef\xbb\xbf")  # Excel reads UTF-8 by its BOM
    assert parse((tmp_path / "out.csv").read_bytes()) == loaded.devices


def test_a_bad_csv_is_a_message_and_the_inventory_stays(tmp_path: Path) -> None:
    config = school(tmp_path)
    (tmp_path / "school.csv").write_bytes(ZH.replace("烟感,教学楼1层", "烟雾,教学楼1层").encode("gb18030"))
    before = (tmp_path / "inventory.yaml").read_bytes()
    result = cli("inventory", "import", str(tmp_path / "school.csv"), "--config", str(config))
    assert result.returncode == 2
    assert "school.csv: row 2, column B (kind)" in result.stderr and "Traceback" not in result.stderr
    assert (tmp_path / "inventory.yaml").read_bytes() == before


def test_an_import_the_whole_config_rejects_leaves_the_inventory(tmp_path: Path) -> None:
    # The CSV is valid on its own, but a gb26875 point needs the config's gb26875 section.
    config = school(tmp_path)
    (tmp_path / "school.csv").write_text(
        "id,kind,protocol,gb26875\ns9,smoke,gb26875,transmitter=uitd-1; system_address=1; component_address=10-2\n"
    )
    before = (tmp_path / "inventory.yaml").read_bytes()
    result = cli("inventory", "import", str(tmp_path / "school.csv"), "--config", str(config))
    assert result.returncode == 2
    assert "there is no gb26875 section" in result.stderr
    assert (tmp_path / "inventory.yaml").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gateway.yaml", "inventory.yaml", "school.csv"]


def test_a_cameras_covered_zones_survive_export_and_import() -> None:
    text = "设备编号,设备类型,楼栋,房间/区域,覆盖区域\r\ncam-1,摄像头,南门,校门,门卫室；校门\r\n"
    (camera,) = parse(text.encode())
    assert camera.covers_zones == ["门卫室", "校门"]
    for headers in ("zh-CN", "en"):
        assert parse(render([camera], headers).encode()) == [camera]  # type: ignore[arg-type]
