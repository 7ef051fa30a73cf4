"""A real ``cityloop serve`` process on loopback, for end-to-end tests that need one.

``prepare_database`` runs the real CLI (``cityloop init``, ``dept add``, ``user add``) against a
database URL; ``ServerProcess`` starts ``cityloop serve`` on a free loopback port in its own
process group, waits for ``/health`` and always kills the group when the block ends, whatever
happened inside it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

CLI = Path(sys.executable).with_name("cityloop")
HOST = "127.0.0.1"


def cli_env(database_url: str, data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["CITYLOOP_DATABASE_URL"] = database_url
    env["CITYLOOP_DATA_DIR"] = str(data_dir)
    return env


def run_cli(env: dict[str, str], *args: str, timeout: float = 60) -> str:
    """Run ``cityloop ARGS`` and return its stdout; a failure raises with stderr attached."""
    done = subprocess.run(
        [str(CLI), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"cityloop {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}"
        )
    return done.stdout


def prepare_database(env: dict[str, str], *, username: str, password: str) -> None:
    """Schema, a centre department and one intake operator, through the real CLI."""
    run_cli(env, "init")
    run_cli(env, "dept", "add", "centre", "--name", "监督指挥中心", "--kind", "centre")
    run_cli(
        env,
        "user",
        "add",
        username,
        "--role",
        "intake_operator",
        "--department",
        "centre",
        "--password",
        password,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``with ServerProcess(env, log_path) as server:`` -> ``server.base_url`` answers /health."""

    def __init__(self, env: dict[str, str], log_path: Path, *, start_timeout: float = 30) -> None:
        self.env = env
        self.log_path = log_path
        self.start_timeout = start_timeout
        self.port = free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(CLI), "serve", "--host", HOST, "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: the kill reaches any child
            )
        try:
            self._wait_healthy(self.proc)
        except BaseException:
            self.kill()
            raise
        return self

    def _wait_healthy(self, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited {proc.returncode}: {self.log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the server did not answer /health in time: {self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL the server's process group (no shutdown, no flush) and reap it."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()


def login(base_url: str, username: str, password: str) -> dict[str, str]:
    resp = httpx.post(
        f"{base_url}/api/v1/auth/token",
        data={"username": username, "password": password},
        timeout=10,
    )
    resp.raise_for_status()
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}
