"""A TCP gate in front of the Temporal server: while it is closed, nothing the client sends reaches the server, so a
call to Temporal stalls as it does on a saturated server, and the test decides when it goes through."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType


class Gate:
    """`async with Gate("127.0.0.1:7233") as gate`: connect a client to `gate.address`; `close()` holds every byte
    from the clients (the server's answers still flow back), `open()` lets the held bytes through in order."""

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.rpartition(":")
        self.upstream = (host or "127.0.0.1", int(port))
        self._open = asyncio.Event()
        self._open.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.address = ""

    def close(self) -> None:
        self._open.clear()

    def open(self) -> None:
        self._open.set()

    async def __aenter__(self) -> Gate:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.address = f"127.0.0.1:{port}"
        return self

    async def __aexit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.open()
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        for task in (self._pump(reader, up_writer, gated=True), self._pump(up_reader, writer, gated=False)):
            t = asyncio.create_task(task)
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, gated: bool) -> None:
        try:
            while data := await reader.read(65536):
                if gated:
                    await self._open.wait()
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
