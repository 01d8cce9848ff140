"""The page's shell stays loadable under `Content-Security-Policy: default-src 'self'` (issue 11)."""

from __future__ import annotations

import re
from pathlib import Path

import api

STATIC = Path(api.__file__).parent / "static"


def test_the_shell_has_no_inline_script_style_handlers_or_outside_resources() -> None:
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    assert not re.search(r"<script(?![^>]*\ssrc=)", html), "inline <script>"
    assert "<style" not in html and not re.search(r"\sstyle=", html), "inline style"
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"
    for path in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert path.startswith("/static/") and (STATIC / path.removeprefix("/static/")).is_file(), path
    for script in STATIC.glob("*.js"):
        text = script.read_text(encoding="utf-8")
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text, (
            script
        )
        assert "eval(" not in text and "innerHTML" not in text, script
