"""Streamed responses that stream under both servers: `streamed(request, rows)` is the content to give a
StreamingHttpResponse.

Under ASGI (daphne, what `up` and production run), Django reads a synchronous iterator whole before it
sends a byte: an audit export of 158,000 events grew the server by 142 MB and sent nothing until the last
row was written. It streams an asynchronous iterator as it goes, so under ASGI the rows are pulled a batch
at a time through `sync_to_async`. Each pull runs on the request's own thread (thread-sensitive, as the
view itself ran), which holds the database connection and the server-side cursor the rows come from.
Under WSGI and Django's test client the synchronous iterator is already streamed, and stays as it is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from itertools import islice

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest

BATCH = 1000  # rows per hop to the request's thread: about 100-200 KB of export, a few hundred hops in all


def streamed(request: HttpRequest, rows: Generator[str]) -> Generator[str] | AsyncIterator[str]:
    """`rows` in the form the server serving `request` streams without reading it whole."""
    if isinstance(request, ASGIRequest):
        return _in_batches(rows)
    return rows


async def _in_batches(rows: Generator[str]) -> AsyncIterator[str]:
    take = sync_to_async(lambda: "".join(islice(rows, BATCH)), thread_sensitive=True)
    try:
        while batch := await take():
            yield batch
    finally:
        # A client that goes away mid-export: close the generator (and so its cursor) on its own thread.
        await sync_to_async(rows.close, thread_sensitive=True)()
