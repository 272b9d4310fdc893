"""What the browser tests share about pages: a signed-in browser context, and the errors a page reports."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.test import Client


def signed_in(browser: Any, console_url: str, user: Any, width: int = 1440) -> Any:
    """A browser context with `user`'s session (made by the test client, so no login page per test)."""
    client = Client()
    client.force_login(user)
    context = browser.new_context(viewport={"width": width, "height": 900})
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "url": console_url,
                          "value": client.cookies[settings.SESSION_COOKIE_NAME].value}])
    return context


class Errors:
    """Script errors, CSP refusals and failed requests the watched pages report: a console that works
    must have none."""

    def __init__(self, *pages: Any) -> None:
        self.seen: list[str] = []
        for page in pages:
            self.watch(page)

    def watch(self, page: Any) -> None:
        page.on("pageerror", lambda error: self.seen.append(f"pageerror: {error}"))
        page.on("console", lambda message: self.seen.append(message.text) if message.type == "error" else None)
        page.on("response", lambda response: self.seen.append(f"HTTP {response.status} {response.url}")
                if response.status >= 400 and not response.url.endswith("/favicon.ico") else None)

    def fatal(self) -> list[str]:
        # htmx logs an out-of-band swap with no target on this page (a row shown elsewhere): harmless.
        # Failed loads are listed with their address by the response handler.
        return [text for text in self.seen
                if "oobErrorNoTarget" not in text and not text.startswith("Failed to load resource")]
