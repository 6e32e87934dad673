"""Start cuewatch servers as real child processes on loopback (used by demo, tests, benches)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """`python -m MODULE ARGS...` (default module: `monitor`, i.e. the cuewatch CLI), or
    `command` when given, in a child process, ready once `ready_path` answers 200."""

    def __init__(
        self,
        args: list[str],
        port: int,
        *,
        env: dict[str, str] | None = None,
        log: Path | None = None,
        cpu: int | None = None,
        module: str = "monitor",
        command: list[str] | None = None,
        ready_path: str = "/healthz",
        cwd: Path | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        self.args = args
        self.module = module
        self.command = command
        self.ready_path = ready_path
        self.cwd = cwd
        self.start_timeout = start_timeout
        self.port = port
        self.env = {**os.environ, **(env or {})}
        self.log_path = log
        self.cpu = cpu
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float | None = None) -> ServerProcess:
        timeout = self.start_timeout if timeout is None else timeout
        cmd = [*(self.command or [sys.executable, "-m", self.module]), *self.args]
        if self.cpu is not None and sys.platform.startswith("linux"):
            cmd = ["taskset", "-c", str(self.cpu), *cmd]
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115
        self.proc = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            cmd, env=self.env, stdout=self._log or subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=self.cwd
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{' '.join(cmd)} exited with {self.proc.returncode}; see {self.log_path}")
            try:
                if httpx.get(self.url + self.ready_path, timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"{' '.join(cmd)} not ready within {timeout}s")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log:
            self._log.close()
            self._log = None
        return self.proc.returncode

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object | type[BaseException] | TracebackType | None) -> None:
        self.stop()


class RedisServer:
    """A throwaway `redis-server` (Debian's package) on a loopback port, with AOF persistence so a
    stop and start keeps its data, as a production Redis would. Used by tests and benchmarks."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = Path(directory)
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        import shutil

        exe = shutil.which("redis-server")
        if exe is None:
            raise FileNotFoundError("redis-server is not installed (Debian: apt-get install redis-server)")
        self.directory.mkdir(parents=True, exist_ok=True)
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory), "--save", ""]
        args += ["--appendonly", "yes", "--appendfsync", "everysec", "--daemonize", "no", "--loglevel", "warning"]
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([exe, *args], stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"redis-server on port {self.port} not ready within {timeout}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: redis flushes the AOF and exits
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
