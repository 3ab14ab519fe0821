"""Serve a directory over HTTP/1.1 with static_handler (blocking or trio).

GET and HEAD; index.html for a directory that has one, a listing for one
that does not; Last-Modified/ETag with 304 answers; single byte ranges.
Files are sent in bounded memory whatever their size.

Usage: python static_files.py DIRECTORY [--io sync|trio] [--port 8000]
(``protomata serve http --root DIRECTORY`` does the same.)
"""

from __future__ import annotations

import argparse


def serve_sync(root: str, host: str, port: int) -> None:
    from protomata.sync import HTTPServer, static_handler

    # listing=False answers 404 for directories without an index file.
    server = HTTPServer(static_handler(root, listing=True), host, port)
    print(f"Serving {root} on {server.url}", flush=True)
    server.serve_forever()


def serve_trio(root: str, host: str, port: int) -> None:
    import trio

    from protomata.trio import HTTPServer, static_handler

    server = HTTPServer(static_handler(root, index_files=("index.html", "index.htm")), host, port)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_forever)
            print(f"Serving {root} on {server.url}", flush=True)

    trio.run(main)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="the directory to serve")
    parser.add_argument("--io", choices=("sync", "trio"), default="sync")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    args = parser.parse_args()
    (serve_trio if args.io == "trio" else serve_sync)(args.root, args.host, args.port)
