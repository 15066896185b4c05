"""A TCP server that accepts connections and never answers: a hung Redis, as a client sees it."""

from __future__ import annotations

import socket
import threading


class HangingServer:
    """Listens on a free loopback port; every connection is accepted, then left unanswered."""

    def __init__(self):
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        self._accepted: list[socket.socket] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="hanging-server", daemon=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> HangingServer:
        self._thread.start()
        return self

    def _accept(self) -> None:
        while not self._stopped.is_set():
            connection, _ = self._listener.accept()
            self._accepted.append(connection)  # held open, never read, never answered

    def stop(self) -> None:
        self._stopped.set()
        socket.create_connection(("127.0.0.1", self.port)).close()  # wakes the accept() up
        self._thread.join(5)
        self._listener.close()
        for connection in self._accepted:
            connection.close()
