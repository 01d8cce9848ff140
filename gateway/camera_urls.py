"""The check of a camera's source URL, for the worker config's models.

Cameras reach the worker directly (RTSP from the camera or NVR) or re-served by a media server:
ZLMediaKit, alone or under wvp-GB28181-pro, pulls or receives a camera and offers it as
`rtsp://host:554/{app}/{stream}`, `rtmp://host/{app}/{stream}`, HTTP-FLV
`http://host:port/{app}/{stream}.live.flv`, HLS `http://host:port/{app}/{stream}/hls.m3u8`,
HTTP-TS `.live.ts` and HTTP-fMP4 `.live.mp4` (docs/firelane.md). Messages say what is
expected (the config loader prefixes them with the file and key) and never repeat the URL,
which may hold the camera's password.
"""

from __future__ import annotations

import urllib.parse

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https")


def check_source(value: str) -> str:
    """A URL with a known scheme and a host, or a file path (no scheme); returns it unchanged."""
    if "://" not in value:
        return value  # a file: its existence is the capture's business (it may appear later)
    parts = urllib.parse.urlsplit(value)
    scheme = parts.scheme.lower()
    if scheme not in STREAM_SCHEMES:
        raise ValueError(
            f"unknown scheme {parts.scheme!r}: expected rtsp://, rtsps://, rtmp://, rtmps://, "
            "http(s):// (a stream such as .live.flv or .m3u8, or a JPEG snapshot) or a file path"
        )
    try:
        port = parts.port  # raises on a port that is not a number in 0..65535
    except ValueError:
        raise ValueError("the port is not a number in 1..65535") from None
    if not parts.hostname:
        raise ValueError(f"no host (expected {scheme}://host[:port]/path)")
    if port == 0:
        raise ValueError("the port is not a number in 1..65535")
    if any(c.isspace() for c in value):
        raise ValueError("a URL has no spaces (percent-encode them as %20)")
    return value
