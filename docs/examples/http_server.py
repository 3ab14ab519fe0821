"""A small blocking HTTP/1.1 server: protomata.http over a plain socket.

It answers every request with a short text saying what was asked, keeps
connections alive when the client allows it, and answers malformed
requests with the status the parser suggests.  One connection at a time.

Usage: python http_server.py [--host 127.0.0.1] [--port 8000]
"""

import argparse
import contextlib
import socket
from http import HTTPStatus

from protomata import http


def respond(
    sock: socket.socket, conn: http.Connection, status: int, text: str, *, head: bool = False
) -> None:
    """Send a complete text response; *head* leaves out the body (for HEAD)."""
    body = text.encode()
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    if status >= 400:
        headers.append(("Connection", "close"))  # we close after an error
    reason = HTTPStatus(status).phrase
    sock.sendall(conn.send(http.Response(status_code=status, reason=reason, headers=headers)))
    if not head:
        sock.sendall(conn.send(http.Data(data=body)))
    sock.sendall(conn.send(http.EndOfMessage()))


def handle(sock: socket.socket) -> None:
    """Serve requests on one connection until either side closes it."""
    conn = http.Connection(http.SERVER)
    while True:
        try:
            event = conn.next_event()
        except http.RemoteProtocolError as exc:
            if conn.our_state in (http.IDLE, http.SEND_RESPONSE):
                respond(sock, conn, exc.error_status_hint, f"{exc}\n")
            return
        if event is http.NEED_DATA:
            conn.receive_data(sock.recv(65536))
        elif type(event) is http.Request:
            request = event
            if conn.they_are_waiting_for_100_continue:
                go_on = http.InformationalResponse(status_code=100, reason="Continue", headers=[])
                sock.sendall(conn.send(go_on))
        elif type(event) is http.EndOfMessage:
            text = f"Hello from protomata: {request.method.decode()} {request.target.decode()}\n"
            respond(sock, conn, 200, text, head=request.method == b"HEAD")
            if conn.our_state is not http.DONE:  # the client wants to close
                return
            conn.start_next_cycle()
        elif type(event) is http.ConnectionClosed:
            return


def serve(listener: socket.socket) -> None:
    """Accept connections on *listener* and serve them one after another."""
    while True:
        sock, _ = listener.accept()
        # A client that vanishes mid-conversation must not stop the server.
        with sock, contextlib.suppress(OSError):
            handle(sock)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    args = parser.parse_args()
    with socket.create_server((args.host, args.port)) as listener:
        host, port = listener.getsockname()[:2]
        print(f"Serving on http://{host}:{port}/", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            serve(listener)


if __name__ == "__main__":
    main()
