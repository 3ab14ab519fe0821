"""The async sinks' group commit: messages that arrive while a group is written form the next."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from protomata.sync._asyncmail import _GroupCommit
from protomata.sync._maildir import Maildir

WAIT = 10.0


class GatedMaildir(Maildir):
    """A real Maildir whose group writes wait for the test to open a gate, one group per gate."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, "sink.test")
        self.groups: list[list[bytes]] = []
        self.gates: list[threading.Event] = [threading.Event() for _ in range(10)]
        self.entered = threading.Semaphore(0)
        self.fail: set[bytes] = set()

    def _store(self, content: bytes) -> str:
        if content in self.fail:
            raise OSError(28, "No space left on device")
        return super()._store(content)

    def deliver_many(self, contents: list[bytes]) -> list[str | Exception]:
        index = len(self.groups)
        self.groups.append(list(contents))
        self.entered.release()
        assert self.gates[index].wait(WAIT)
        return super().deliver_many(contents)


async def _asyncio_to_thread(func: Any, *args: Any) -> Any:
    return await asyncio.to_thread(func, *args)


async def _until(condition: Any, sleep: Any) -> None:
    for _ in range(int(WAIT / 0.005)):
        if condition():
            return
        await sleep(0.005)
    raise AssertionError("condition never met")


def _on_disk(path: Path) -> list[bytes]:
    return sorted(p.read_bytes() for p in (path / "new").iterdir())


async def _grouping(
    group: _GroupCommit, maildir: GatedMaildir, sleep: Any, spawn: Any
) -> dict[bytes, Any]:
    """Five deliveries: the first is written alone, the four that wait become one group."""
    outcomes: dict[bytes, Any] = {}

    async def one(content: bytes) -> None:
        try:
            outcomes[content] = await group.deliver(content)
        except Exception as exc:
            outcomes[content] = exc

    await spawn(one, b"m0")
    await _until(lambda: len(maildir.groups) == 1, sleep)
    for n in range(1, 5):
        await spawn(one, b"m%d" % n)
    await sleep(0.05)  # they wait: one group at a time
    assert len(maildir.groups) == 1
    maildir.gates[0].set()
    await _until(lambda: len(maildir.groups) == 2, sleep)
    maildir.gates[1].set()
    await _until(lambda: len(outcomes) == 5, sleep)
    return outcomes


def _check_grouping(maildir: GatedMaildir, outcomes: dict[bytes, Any], root: Path) -> None:
    assert maildir.groups == [[b"m0"], [b"m1", b"m2", b"m3", b"m4"]]
    assert isinstance(outcomes[b"m3"], OSError) and outcomes[b"m3"].errno == 28
    stored = {c: p for c, p in outcomes.items() if c != b"m3"}
    for content, path in stored.items():
        assert os.path.dirname(path) == str(root / "new")
        assert Path(path).read_bytes() == content
    assert _on_disk(root) == [b"m0", b"m1", b"m2", b"m4"]
    assert list((root / "tmp").iterdir()) == []


def test_grouping_and_one_failed_message_asyncio(tmp_path: Path) -> None:
    maildir = GatedMaildir(tmp_path)
    maildir.fail.add(b"m3")

    async def main() -> dict[bytes, Any]:
        group = _GroupCommit(maildir, _asyncio_to_thread, asyncio.Event)
        tasks: list[asyncio.Task[None]] = []

        async def spawn(func: Any, arg: bytes) -> None:
            tasks.append(asyncio.create_task(func(arg)))
            await asyncio.sleep(0)

        outcomes = await _grouping(group, maildir, asyncio.sleep, spawn)
        await asyncio.gather(*tasks)
        assert not group._busy and not group._pending
        return outcomes

    _check_grouping(maildir, asyncio.run(main()), tmp_path)


@pytest.mark.skipif(importlib.util.find_spec("trio") is None, reason="trio is not installed")
def test_grouping_and_one_failed_message_trio(tmp_path: Path) -> None:
    import trio

    maildir = GatedMaildir(tmp_path)
    maildir.fail.add(b"m3")

    async def to_thread(func: Any, *args: Any) -> Any:
        return await trio.to_thread.run_sync(func, *args)

    async def main() -> dict[bytes, Any]:
        group = _GroupCommit(maildir, to_thread, trio.Event)
        async with trio.open_nursery() as nursery:

            async def spawn(func: Any, arg: bytes) -> None:
                nursery.start_soon(func, arg)
                await trio.sleep(0.01)

            outcomes = await _grouping(group, maildir, trio.sleep, spawn)
        assert not group._busy and not group._pending
        return outcomes

    _check_grouping(maildir, trio.run(main), tmp_path)


def test_cancelled_writer_fails_its_group_and_hands_on(tmp_path: Path) -> None:
    """A session cancelled while writing a group: the rest of it fail, later messages go on."""
    maildir = GatedMaildir(tmp_path)

    async def main() -> None:
        group = _GroupCommit(maildir, _asyncio_to_thread, asyncio.Event)
        first = asyncio.create_task(group.deliver(b"m0"))
        await _until(lambda: len(maildir.groups) == 1, asyncio.sleep)
        leader = asyncio.create_task(group.deliver(b"m1"))
        follower = asyncio.create_task(group.deliver(b"m2"))
        await asyncio.sleep(0.01)
        maildir.gates[0].set()
        assert (await first).endswith(tuple(os.listdir(tmp_path / "new")))
        await _until(lambda: len(maildir.groups) == 2, asyncio.sleep)
        assert maildir.groups[1] == [b"m1", b"m2"]
        late = asyncio.create_task(group.deliver(b"m3"))
        await asyncio.sleep(0.01)
        leader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leader
        with pytest.raises(OSError, match="delivery interrupted"):
            await follower
        # the late message leads the next group without waiting for the abandoned one
        await _until(lambda: len(maildir.groups) == 3, asyncio.sleep)
        assert maildir.groups[2] == [b"m3"]
        maildir.gates[2].set()
        assert Path(await late).read_bytes() == b"m3"
        maildir.gates[1].set()  # the abandoned thread finishes in the background
        await asyncio.to_thread(lambda: None)

    asyncio.run(main())


def test_fsync_failure_of_new_fails_the_whole_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    maildir = Maildir(tmp_path)

    def broken(path: str) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("protomata.sync._maildir._fsync_dir", broken)
    outcomes = maildir.deliver_many([b"a", b"b"])
    assert [type(o) for o in outcomes] == [OSError, OSError]
    assert all(getattr(o, "errno", None) == 5 for o in outcomes)
