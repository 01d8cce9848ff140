"""Source URLs as cameras, NVRs and media servers (ZLMediaKit, wvp-GB28181-pro) serve them, and
the GB/T 28181 id an inventory camera may carry."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from analytics.devices import DeviceSpec
from analytics.records import DeviceKind
from drivers.camera import source_kind
from gateway.firelane import ConfigError, load_worker_config

GB_ID = "34020000001320000001"  # centre 34020000, industry 00, type 132 (camera), serial 0000001


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("rtsp://192.168.10.31:554/Streaming/Channels/101", "rtsp"),  # a camera's own main stream
        ("rtsp://admin:pw@192.168.10.31:554/Streaming/Channels/102", "rtsp"),  # its sub-stream
        ("rtsp://zlm.school.local:554/live/gate-east", "rtsp"),  # ZLMediaKit, app/stream
        (f"rtsp://zlm.school.local:554/rtp/{GB_ID}_{GB_ID}", "rtsp"),  # wvp: rtp/{device}_{channel}
        (f"rtsp://zlm.school.local:554/rtp/{GB_ID}", "rtsp"),  # ZLMediaKit openRtpServer stream id
        ("rtsps://zlm.school.local:322/live/gate-east", "rtsp"),
        ("rtmp://zlm.school.local:1935/live/gate-east", "stream"),
        ("http://zlm.school.local:80/live/gate-east.live.flv", "stream"),  # HTTP-FLV
        ("http://zlm.school.local/live/gate-east.flv", "stream"),  # HTTP-FLV, older ZLMediaKit
        ("http://zlm.school.local:80/live/gate-east/hls.m3u8", "stream"),  # HLS
        ("https://zlm.school.local/live/gate-east.live.ts?vhost=school", "stream"),  # HTTP-TS
        ("http://zlm.school.local/live/gate-east.live.mp4", "stream"),  # HTTP-fMP4
        ("http://192.168.10.31/ISAPI/Streaming/channels/101/picture", "snapshot"),
        ("recordings/lane.avi", "file"),
    ],
)
def test_media_server_and_camera_url_forms_are_accepted(tmp_path: Path, source: str, kind: str) -> None:
    assert source_kind(source) == kind
    path = _worker_yaml(tmp_path, {"source": source, "analysis_source": source})
    camera = load_worker_config(path).cameras[0]
    expected = str(tmp_path / source) if kind == "file" else source  # files: beside the config
    assert camera.source == expected and camera.analysed_source == expected


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("rstp://192.168.10.31/stream1", "unknown scheme 'rstp': expected rtsp://"),
        ("rtsp:///live/stream", "no host"),
        ("rtsp://zlm:99999/live/stream", "the port is not a number in 1..65535"),
        ("rtsp://zlm/live/gate east", "a URL has no spaces"),
    ],
)
def test_a_malformed_source_names_the_file_the_key_and_what_is_expected(
    tmp_path: Path, source: str, message: str
) -> None:
    path = _worker_yaml(tmp_path, {"source": "rtsp://cam/main", "analysis_source": source})
    with pytest.raises(ConfigError) as error:
        load_worker_config(path)
    assert f"{path}: cameras.0.analysis_source: {message}" in str(error.value)


def test_the_sub_stream_is_what_the_worker_analyses(tmp_path: Path) -> None:
    path = _worker_yaml(tmp_path, {"source": "rtsp://cam/101", "analysis_source": "rtsp://cam/102"})
    assert load_worker_config(path).cameras[0].analysed_source == "rtsp://cam/102"
    path = _worker_yaml(tmp_path, {"source": "rtsp://cam/101"})
    assert load_worker_config(path).cameras[0].analysed_source == "rtsp://cam/101"


def test_an_inventory_camera_keeps_its_gb28181_id() -> None:
    assert DeviceSpec(id="cam1", kind=DeviceKind.CAMERA, gb28181_id=GB_ID).gb28181_id == GB_ID
    assert DeviceSpec(id="cam1", kind=DeviceKind.CAMERA).gb28181_id == ""


@pytest.mark.parametrize(
    ("gb_id", "what"),
    [(GB_ID[:-1], "got 19 digits"), (GB_ID + "1", "got 21 digits"), ("3402000000132000000A", "digits only")],
)
def test_a_gb28181_id_is_twenty_digits(gb_id: str, what: str) -> None:
    with pytest.raises(ValidationError) as error:
        DeviceSpec(id="cam1", kind=DeviceKind.CAMERA, gb28181_id=gb_id)
    assert f"a GB/T 28181 device id is exactly 20 digits 0-9 ({what})" in str(error.value)


def _worker_yaml(tmp_path: Path, camera: dict[str, str]) -> Path:
    lane = {"id": "a", "polygon": [[0, 0], [9, 0], [9, 9]]}
    config = {
        "campus_id": "c1",
        "snapshot_dir": "snaps",
        "cameras": [{"id": "cam1", **camera, "lanes": [lane]}],
    }
    path = tmp_path / "firelane.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_key_frames_only_is_for_rtsp_streams(tmp_path: Path) -> None:
    path = _worker_yaml(tmp_path, {"source": "rtsp://cam/101", "decode": "key_frames"})
    assert load_worker_config(path).cameras[0].decode == "key_frames"
    path = _worker_yaml(tmp_path, {"source": "http://zlm/live/a.live.flv", "decode": "key_frames"})
    with pytest.raises(
        ConfigError, match=r"cameras\.0: decode: key_frames needs an rtsp:// or rtsps:// source"
    ):
        load_worker_config(path)


def test_decode_defaults_to_auto_for_every_source_kind(tmp_path: Path) -> None:
    for source in ("rtsp://cam/101", "http://zlm/live/a.live.flv", "http://cam/snapshot.jpg"):
        camera = load_worker_config(_worker_yaml(tmp_path, {"source": source})).cameras[0]
        assert camera.decode == "auto" and camera.key_frame_max_interval_s == 4.0
