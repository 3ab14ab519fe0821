"""UDP endpoints: an echo service and a client, on asyncio or trio.

Each :func:`open_udp` endpoint sends and receives whole datagrams; one
bound to a local address serves, one given a remote address is connected
to it (it needs no address to send, and only hears from that peer).

Usage: python udp_echo.py [--io asyncio|trio]   (echoes three datagrams and exits)
"""

from __future__ import annotations

import argparse


async def asyncio_demo() -> list[bytes]:
    import asyncio

    from protomata.asyncio import open_udp

    server = await open_udp(local_addr=("127.0.0.1", 0))  # port 0: any free port

    async def echo() -> None:
        while True:
            data, sender = await server.receive()
            await server.send(data.upper(), sender)

    task = asyncio.get_running_loop().create_task(echo())
    replies = []
    async with server, await open_udp(remote_addr=server.local_address[:2]) as client:
        for word in (b"one", b"two", b"three"):
            await client.send(word)
            data, _ = await client.receive(timeout=5.0)  # TimeoutError if lost
            replies.append(data)
        task.cancel()
    return replies


async def trio_demo() -> list[bytes]:
    import trio

    from protomata.trio import open_udp

    replies = []
    async with await open_udp(local_addr=("127.0.0.1", 0)) as server:

        async def echo() -> None:
            while True:
                data, sender = await server.receive()
                await server.send(data.upper(), sender)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(echo)
            async with await open_udp(remote_addr=server.local_address) as client:
                for word in (b"one", b"two", b"three"):
                    await client.send(word)
                    data, _ = await client.receive(timeout=5.0)
                    replies.append(data)
            nursery.cancel_scope.cancel()
    return replies


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--io", choices=("asyncio", "trio"), default="asyncio")
    args = parser.parse_args()
    if args.io == "trio":
        import trio

        print(trio.run(trio_demo))
    else:
        import asyncio

        print(asyncio.run(asyncio_demo()))
