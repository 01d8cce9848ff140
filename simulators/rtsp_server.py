"""An RTSP camera for tests and benchmarks: GStreamer's RTSP server serving H.264.

Runs under the system Python (`/usr/bin/python3`, which has PyGObject), so it imports only the
standard library and `gi`. It reads a JSON plan and serves one live, shared stream at
`rtsp://127.0.0.1:{port}{path}`, as a camera does: every client sees the same moment.

Plan: `{"port": 8554, "path": "/live", "key_int": 10, "loop": true, "segments": [...]}` (and
`"slices": N` to code each frame in N slices, as many cameras do; `"parameter_sets_per_slice":
true` to send the SPS/PPS before every slice of a key frame, as GStreamer's RTP payloader does
with `config-interval=-1`, instead of once before it: FFmpeg then reads such a key frame as a
packet per slice; `"codec": "h265"` for H.265 made by x265), each
segment either raw BGR frames (`{"raw": FILE, "width": W, "height": H, "fps": F}`, the file
holding whole frames back to back, played in order) or a pause (`{"stall_s": S}`: nothing is
sent, as a camera whose encoder hangs mid-GOP). A segment may change the resolution: the encoder
restarts with new SPS/PPS in the same session. Or `{"h264": FILE}`: an H.264 Matroska file
served as it is (no encoding while serving, for benchmarks), `loop` ignored.

Prints `READY {port}` on stdout once listening, and `STREAMING {unix time}` on stderr each time
a media starts playing the plan from its beginning; SIGTERM or SIGINT stops it.
Run: `/usr/bin/python3 simulators/rtsp_server.py PLAN.json`, or
`... encode PLAN.json OUT.mkv` to encode the plan's frames once (`repeat` times, default 1) to an
H.264 Matroska file at `bitrate_kbps`, as a camera's main stream is coded (main profile, CABAC,
no B-frames, a key frame every `key_int` frames and no others, as cameras keep a fixed GOP).
"""

from __future__ import annotations

import json
import mmap
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

ENCODE = (
    "appsrc name=src is-live=true format=time do-timestamp=true ! queue ! videoconvert ! "
    "video/x-raw,format=I420 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={key_int} "
    "{slices}! video/x-h264,profile=constrained-baseline ! {parameter_sets}"
)
# The SPS/PPS in the stream before each key frame, as cameras send them (h264parse puts them
# before the key frame's first slice); or the payloader's way, before every slice of it.
ONCE_PER_KEY_FRAME = "h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96"
BEFORE_EACH_SLICE = "rtph264pay name=pay0 pt=96 config-interval=-1"
ENCODE_H265 = (
    "appsrc name=src is-live=true format=time do-timestamp=true ! queue ! videoconvert ! "
    "video/x-raw,format=I420 ! x265enc tune=zerolatency speed-preset=ultrafast key-int-max={key_int} "
    "! video/x-h265,profile=main ! rtph265pay name=pay0 pt=96 config-interval=-1"
)
PASSTHROUGH = (
    "filesrc location={h264} ! matroskademux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1"
)


class Feeder:
    """Pushes the plan's frames into one media's appsrc in real time, until the media goes."""

    def __init__(self, plan: dict[str, Any], appsrc: Any) -> None:
        self.plan = plan
        self.appsrc = appsrc
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.monotonic()
        # When the plan's time 0 went out, for tests that time what a client reports.
        print(f"STREAMING {time.time():.3f}", file=sys.stderr, flush=True)
        pts_s = 0.0
        while not self.stopped.is_set():
            for segment in self.plan["segments"]:
                if "stall_s" in segment:
                    pts_s += float(segment["stall_s"])
                    if self._wait_until(started + pts_s):
                        return
                    continue
                width, height, fps = int(segment["width"]), int(segment["height"]), float(segment["fps"])
                caps = Gst.Caps.from_string(
                    f"video/x-raw,format=BGR,width={width},height={height},framerate={int(fps)}/1"
                )
                self.appsrc.set_property("caps", caps)
                size = width * height * 3
                with (
                    open(segment["raw"], "rb") as file,
                    mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as raw,
                ):
                    for offset in range(0, len(raw) - size + 1, size):
                        if self._wait_until(started + pts_s):
                            return
                        buffer = Gst.Buffer.new_wrapped(raw[offset : offset + size])
                        buffer.duration = int(Gst.SECOND / fps)
                        if self.appsrc.emit("push-buffer", buffer) != Gst.FlowReturn.OK:
                            return  # the media was unprepared: its clients are gone
                        pts_s += 1.0 / fps
            if not self.plan.get("loop", True):
                self.appsrc.emit("end-of-stream")
                return

    def _wait_until(self, monotonic_s: float) -> bool:
        """Sleep until then; True when asked to stop."""
        return self.stopped.wait(max(0.0, monotonic_s - time.monotonic()))


def encode(plan: dict[str, Any], out: str) -> int:
    """Encode the plan's raw segments to `out` as fast as the encoder goes."""
    Gst.init(None)
    segment = plan["segments"][0]
    width, height, fps = int(segment["width"]), int(segment["height"]), int(segment["fps"])
    pipeline = Gst.parse_launch(
        f"appsrc name=src block=true format=time caps=video/x-raw,format=BGR,width={width},height={height},"
        f"framerate={fps}/1 ! videoconvert ! video/x-raw,format=I420 ! x264enc speed-preset=faster "
        f"bitrate={int(plan.get('bitrate_kbps', 4096))} key-int-max={int(plan.get('key_int', 50))} "
        f"bframes=0 option-string=scenecut=0 ! video/x-h264,profile=main ! h264parse ! matroskamux ! filesink location={out}"
    )
    appsrc = pipeline.get_by_name("src")
    pipeline.set_state(Gst.State.PLAYING)
    size = width * height * 3
    frame = 0
    data = Path(segment["raw"]).read_bytes()
    for _ in range(int(plan.get("repeat", 1))):
        for offset in range(0, len(data) - size + 1, size):
            buffer = Gst.Buffer.new_wrapped(data[offset : offset + size])
            buffer.pts = frame * Gst.SECOND // fps
            buffer.duration = Gst.SECOND // fps
            appsrc.emit("push-buffer", buffer)
            frame += 1
    appsrc.emit("end-of-stream")
    message = pipeline.get_bus().timed_pop_filtered(
        600 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR
    )
    pipeline.set_state(Gst.State.NULL)
    if message is None or message.type == Gst.MessageType.ERROR:
        print(f"encoding failed: {message.parse_error() if message else 'timeout'}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[1] == "encode":
        return encode(json.loads(Path(argv[2]).read_text(encoding="utf-8")), argv[3])
    plan = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(plan["port"]))
    factory = GstRtspServer.RTSPMediaFactory()
    h264 = plan["segments"][0].get("h264") if plan["segments"] else None
    if h264:
        factory.set_launch(f"( {PASSTHROUGH.format(h264=h264)} )")
    else:
        slices = f"option-string=slices={int(plan['slices'])} " if plan.get("slices") else ""
        launch = ENCODE_H265 if plan.get("codec") == "h265" else ENCODE
        parameter_sets = BEFORE_EACH_SLICE if plan.get("parameter_sets_per_slice") else ONCE_PER_KEY_FRAME
        key_int = int(plan.get("key_int", 10))
        factory.set_launch(
            f"( {launch.format(key_int=key_int, slices=slices, parameter_sets=parameter_sets)} )"
        )
    factory.set_shared(True)  # one camera: every client gets the same live stream
    feeders: list[Feeder] = []

    def configure(_factory: Any, media: Any) -> None:
        if h264:
            return
        appsrc = media.get_element().get_by_name_recurse_up("src")
        feeder = Feeder(plan, appsrc)
        feeders.append(feeder)
        media.connect("unprepared", lambda *_: feeder.stopped.set())
        feeder.thread.start()

    factory.connect("media-configure", configure)
    server.get_mount_points().add_factory(plan.get("path", "/live"), factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{plan['port']}", file=sys.stderr)
        return 1
    loop = GLib.MainLoop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, loop.quit)
    print(f"READY {plan['port']}", flush=True)
    loop.run()
    for feeder in feeders:
        feeder.stopped.set()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
