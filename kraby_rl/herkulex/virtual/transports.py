"""Where the virtual bus meets the host: a pseudo-terminal or a ser2net-style TCP port.

Both can be closed and reopened on the same name (the pty behind a stable symbolic link,
the TCP listener on the same port), which is how the "port disappears and comes back"
fault is made.
"""

from __future__ import annotations

import os
import socket
import termios
import tty


class PtyTransport:
    """A pty whose slave side is the host's serial port.

    Args:
        link: optional path of a symbolic link to the slave device, kept pointing at the
            current pty across reopen (like socat's ``link=``). The host opens the link.
    """

    kind = "pty"

    def __init__(self, link: str | None = None):
        self.link = os.path.abspath(link) if link else None
        self.master = self.slave = None
        self.path = None
        self.open()

    @property
    def url(self) -> str:
        """What the host passes to the driver."""
        return self.link or self.path

    def open(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        attrs = termios.tcgetattr(slave)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        os.set_blocking(master, False)
        self.master, self.slave = master, slave
        self.path = os.ttyname(slave)
        if self.link:
            tmp = f"{self.link}.tmp{os.getpid()}"
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(self.path, tmp)
            os.replace(tmp, self.link)

    def fds(self) -> list[int]:
        return [] if self.master is None else [self.master]

    def read(self, fd: int) -> bytes:
        try:
            return os.read(self.master, 4096)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError:
            return b""

    def write(self, data: bytes) -> None:
        if self.master is None:
            return
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.master, view)
            except BlockingIOError:
                continue
            view = view[n:]

    def close(self) -> None:
        """Close the pty (the host then gets I/O errors) and remove the link."""
        for fd in (self.master, self.slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.master = self.slave = None
        if self.link and os.path.islink(self.link):
            os.unlink(self.link)


BUSY_MESSAGE = b"Port already in use by another client (kraby fake-bus serves one at a time)\r\n"
"""What a second TCP client reads before its connection is closed (ser2net says the same)."""


class TcpTransport:
    """A raw TCP listener (ser2net ``raw`` mode): one client at a time, bytes both ways.

    Args:
        host: address to bind; loopback by default.
        port: TCP port (0 = any free port, chosen once and kept across reopen).
    """

    kind = "tcp"

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host = host
        self.port = port
        self.listener = None
        self.client = None
        self.refused = 0
        self.open()

    @property
    def url(self) -> str:
        return f"socket://{self.host}:{self.port}"

    def open(self) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(1)
        s.setblocking(False)
        self.port = s.getsockname()[1]
        self.listener = s

    def fds(self) -> list[int]:
        out = []
        if self.listener is not None:
            out.append(self.listener.fileno())
        if self.client is not None:
            out.append(self.client.fileno())
        return out

    def read(self, fd: int) -> bytes:
        if self.listener is not None and fd == self.listener.fileno():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return b""
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.setblocking(False)
            if self.client is not None and self._client_gone():
                self.client.close()         # it hung up: its EOF waits behind this accept
                self.client = None
            if self.client is not None:
                # like ser2net: the port is in use; the newcomer is told so and closed, the
                # client that has the bus keeps it
                try:
                    conn.sendall(BUSY_MESSAGE)
                except OSError:
                    pass
                conn.close()
                self.refused += 1
                return b""
            self.client = conn
            return b""
        if self.client is None:
            return b""
        try:
            data = self.client.recv(4096)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError:
            data = b""
        if not data:
            self.client.close()
            self.client = None
        return data

    def _client_gone(self) -> bool:
        """The current client closed its end (a read would give EOF)."""
        try:
            return self.client.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True

    def write(self, data: bytes) -> None:
        if self.client is None:
            return
        try:
            self.client.setblocking(True)
            self.client.sendall(data)
            self.client.setblocking(False)
        except OSError:
            self.client.close()
            self.client = None

    def close(self) -> None:
        """Close the listener and the client (the host sees the connection drop)."""
        for s in (self.client, self.listener):
            if s is not None:
                s.close()
        self.client = self.listener = None
