"""Fetch one URL with protomata.http over a plain blocking socket.

Usage: python http_client.py http://127.0.0.1:8000/some/path
"""

import socket
import sys
from urllib.parse import urlsplit

from protomata import http


def fetch(url: str) -> tuple[int, bytes]:
    """GET *url* and return the status code and the body."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn = http.Connection(http.CLIENT)
    request = http.Request(method="GET", target=target, headers=[("Host", parts.netloc)])
    with socket.create_connection((parts.hostname or "localhost", parts.port or 80)) as sock:
        sock.sendall(conn.send(request))
        sock.sendall(conn.send(http.EndOfMessage()))
        status, body = 0, bytearray()
        while True:
            event = conn.next_event()
            if event is http.NEED_DATA:
                conn.receive_data(sock.recv(65536))  # b"" at EOF is fine
            elif type(event) is http.Response:
                status = event.status_code
            elif type(event) is http.Data:
                body += event.data
            elif type(event) is http.EndOfMessage:
                return status, bytes(body)


if __name__ == "__main__":
    status, body = fetch(sys.argv[1])
    print(f"HTTP status {status}, {len(body)} bytes", file=sys.stderr)
    sys.stdout.buffer.write(body)
