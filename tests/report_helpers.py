"""What the report's tests share: Chromium, when installed, and the page's data."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")


def chromium(*args: str) -> subprocess.CompletedProcess:
    user_dir = Path(subprocess.check_output(["mktemp", "-d"], text=True).strip())
    try:
        return subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={user_dir}", "--virtual-time-budget=5000",
             *args], capture_output=True, text=True, timeout=120, check=False)
    finally:
        shutil.rmtree(user_dir, ignore_errors=True)


def page_data(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    blob = re.search(r'<script id="data" type="application/json">(.*?)</script>', text, re.DOTALL)
    return json.loads(blob.group(1))


def with_data(page: Path, data: dict, target: Path) -> Path:
    """A copy of the page drawing `data` instead of its own."""
    text = page.read_text(encoding="utf-8")
    blob = re.search(r'(<script id="data" type="application/json">)(.*?)(</script>)', text,
                     re.DOTALL)
    target.write_text(text[:blob.start(2)] + json.dumps(data) + text[blob.end(2):],
                      encoding="utf-8")
    return target
