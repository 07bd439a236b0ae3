"""A loopback TCP proxy in front of a broker, to make it unreachable or slow on demand
while its data survives (the embedded broker keeps data in memory only, so stopping it
would also lose every topic), or to put TLS in front of it (Tansu's own TLS did not work
with aiokafka here), so the Kafka connection settings are tested over a real TLS link."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
from pathlib import Path

from common.broker import free_port, tansu_binary, wait_for_port


class Proxy:
    def __init__(
        self, listen_port: int, target_port: int, tls: ssl.SSLContext | None = None
    ) -> None:
        self.listen_port = listen_port
        self.target_port = target_port
        self.tls = tls
        self.flowing = asyncio.Event()
        self.flowing.set()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.listen_port, ssl=self.tls
        )

    async def cut(self) -> None:
        """Unreachable: stop listening and drop every open connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def pause(self) -> None:
        """Slow: connections stay open but no byte moves until resume()."""
        self.flowing.clear()

    def resume(self) -> None:
        self.flowing.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update({writer, up_writer})
        await asyncio.gather(
            self._pump(reader, up_writer), self._pump(up_reader, writer), return_exceptions=True
        )

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self.flowing.wait()
                writer.write(data)
                await writer.drain()
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.transport.abort()


class ProxiedBroker:
    """Tansu listening on one port and advertising the proxy's, so every client connection
    (bootstrap and partition leaders alike) goes through the proxy."""

    def __init__(self, log_path: Path | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.broker_port = free_port()
        self.proxy = Proxy(free_port(), self.broker_port, tls)
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.proxy.listen_port}"

    async def start(self) -> ProxiedBroker:
        listen = f"tcp://127.0.0.1:{self.broker_port}"
        advertised = f"tcp://127.0.0.1:{self.proxy.listen_port}"
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(tansu_binary()), "broker", "--listener-url", listen,
             "--advertised-listener-url", advertised],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        await asyncio.to_thread(wait_for_port, "127.0.0.1", self.broker_port)
        await self.proxy.start()
        return self

    async def stop(self) -> None:
        await self.proxy.cut()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
