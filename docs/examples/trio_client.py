"""An HTTP/1.1 client session with protomata.trio.HTTPClient.

Usage: python trio_client.py BASE_URL [--cafile CA.pem | --insecure]

The same steps as sync_client.py, with ``await``; the upload is an async
generator this time (a plain iterable works too).
"""

from __future__ import annotations

import argparse
import ssl
from collections.abc import AsyncIterator

import trio

from protomata.trio import HTTPClient, HTTPError


async def upload_pieces() -> AsyncIterator[bytes]:
    """A request body produced on the fly: sent chunked, never held whole."""
    for i in range(100):
        await trio.sleep(0)
        yield b"x" * (i + 1)


async def session(base: str, client: HTTPClient) -> list[str]:
    """Talk to the server at *base*; return what each step found."""
    lines = []
    for _ in range(2):  # the second GET reuses the connection
        response = await client.get(base)
        lines.append(f"GET / -> {response.status} {(await response.text()).strip()}")
    response = await client.request("POST", base + "echo", content=b"hello")
    lines.append(f"POST /echo -> {await response.read()!r}")
    response = await client.request("POST", base + "count", content=upload_pieces())
    lines.append(f"POST /count -> {(await response.text()).strip()}")
    async with await client.get(base + "numbers?n=3") as response:
        pieces = [piece async for piece in response.iter_bytes()]
    lines.append(f"GET /numbers -> {b''.join(pieces).split()}")
    return lines


def make_client(cafile: str | None = None, insecure: bool = False) -> HTTPClient:
    """A client; certificates are verified unless *insecure*."""
    if cafile is not None:
        return HTTPClient(verify=ssl.create_default_context(cafile=cafile), timeout=10.0)
    if insecure:
        return HTTPClient(verify=False, timeout=10.0)  # for testing only
    return HTTPClient(timeout=10.0)


async def run(base: str, cafile: str | None = None, insecure: bool = False) -> list[str]:
    """:func:`session` on a fresh client, which is closed afterwards."""
    async with make_client(cafile, insecure) as client:
        return await session(base, client)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="server base URL, ending in /")
    parser.add_argument("--cafile", help="trust the CAs in this PEM file")
    parser.add_argument("--insecure", action="store_true", help="do not verify certificates")
    args = parser.parse_args()
    try:
        lines = trio.run(run, args.base, args.cafile, args.insecure)
    except HTTPError as exc:
        print(f"failed: {exc}")
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
