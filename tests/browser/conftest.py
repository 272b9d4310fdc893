"""The browser tests' shared chromium, one per module."""

from __future__ import annotations

import os

import pytest

from tests.browser import live

# Playwright's sync API runs an event loop in the test's thread; the ORM calls made in between are
# ordinary blocking calls, which Django's async-safety check would otherwise refuse.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from playwright.sync_api import sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def browser():
    if not live.chromium_path():
        pytest.fail(live.MISSING_CHROMIUM)
    with sync_playwright() as playwright:
        chromium = live.launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()
