"""Debian's chromium driven by Playwright (the system browser: Playwright downloads nothing)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def launch_chromium(executable: str) -> Iterator[Any]:
    """Headless chromium; --no-sandbox only when running as root (its sandbox refuses root)."""
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox"] if hasattr(os, "getuid") and os.getuid() == 0 else []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=args)
        try:
            yield browser
        finally:
            browser.close()
