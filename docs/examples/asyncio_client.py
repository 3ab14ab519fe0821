"""An HTTP/1.1 client session with protomata.asyncio.HTTPClient.

Usage: python asyncio_client.py BASE_URL

BASE_URL is a server like asyncio_server.py or sync_server.py.
"""

from __future__ import annotations

import asyncio
import sys

from protomata.asyncio import HTTPClient, HTTPError


async def session(base: str) -> list[str]:
    """GET twice on one pooled connection, POST, then stream a response."""
    lines = []
    async with HTTPClient(timeout=10.0) as client:  # verify=... as for the others
        for _ in range(2):
            response = await client.get(base)
            lines.append(f"GET / -> {response.status} {(await response.text()).strip()}")
        response = await client.request("POST", base + "echo", content=b"hello")
        lines.append(f"POST /echo -> {await response.read()!r}")
        async with await client.get(base + "numbers?n=3") as response:
            pieces = [piece async for piece in response.iter_bytes()]
        lines.append(f"GET /numbers -> {b''.join(pieces).split()}")
    return lines


if __name__ == "__main__":
    try:
        print("\n".join(asyncio.run(session(sys.argv[1]))))
    except HTTPError as exc:
        print(f"failed: {exc}")
        sys.exit(1)
