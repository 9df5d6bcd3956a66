"""A real SFTP server on 127.0.0.1 (asyncssh, in a background thread) for the source tests."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import asyncssh


class LoopbackSFTPServer:
    """Serves ``root`` over SFTP on 127.0.0.1:<random port> to one user with one key."""

    def __init__(self, root: Path, keys_dir: Path, user: str = "cjmonitor"):
        self.root, self.user = root, user
        keys_dir.mkdir(parents=True, exist_ok=True)
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key_path = keys_dir / "client_ed25519"
        client_key.write_private_key(str(self.client_key_path))
        self.client_key_path.chmod(0o600)
        self._host_key = host_key
        self._authorized = asyncssh.import_authorized_keys(client_key.export_public_key().decode())
        self.known_hosts_path = keys_dir / "known_hosts"
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server = None
        self._ready = threading.Event()
        self.fail_next_connections = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        root = str(self.root)
        server = self

        class _Server(asyncssh.SSHServer):
            def connection_made(self, conn):
                if server.fail_next_connections > 0:
                    server.fail_next_connections -= 1
                    conn.abort()

            def begin_auth(self, username):
                return True

        def _sftp_factory(chan):
            return asyncssh.SFTPServer(chan, chroot=root)

        self._server = await asyncssh.create_server(
            _Server, "127.0.0.1", 0, server_host_keys=[self._host_key], authorized_client_keys=self._authorized,
            sftp_factory=_sftp_factory, allow_scp=False)
        self.port = self._server.sockets[0].getsockname()[1]
        public = self._host_key.export_public_key().decode().split()
        self.known_hosts_path.write_text(f"[127.0.0.1]:{self.port} {public[0]} {public[1]}\n")

    def __enter__(self) -> LoopbackSFTPServer:
        self._thread.start()
        if not self._ready.wait(20):
            raise RuntimeError("SFTP server did not start")
        return self

    def __exit__(self, *exc) -> None:
        async def _stop():
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
