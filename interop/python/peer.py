#!/usr/bin/python3
"""Python `websockets` peer for the interop matrix.

The Go tests in interop/ start this script with Debian's /usr/bin/python3 (the
only interpreter that has websockets 10.4) and read one JSON object per line
from its stdout. The behaviour of each case kind is defined in
interop/cases.go; this file mirrors it and must stay in step with the Node
peer (interop/node/peer.js) and the browser page (interop/browser/page.html).

    peer.py server              serve until stdin closes; first line {"ready":..., "ports": {MODE: port}}
    peer.py client URL KIND:NAME[:MODE]...   connect to URL/NAME for each case in turn

MODE is the permessage-deflate configuration (PeerDeflate in
interop/cases_test.go): the server listens on one port per mode, the client
uses the case's.

Each case ends with a line {"case": NAME, "ok": bool, "detail": str}.
"""

import asyncio
import contextlib
import hashlib
import json
import sys

import websockets
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)

OFFERED_PROTOCOLS = ["x-unknown", "chat.v2", "chat.v1"]
SERVER_PROTOCOLS = ["chat.v2"]
EXPECTED_PROTOCOL = "chat.v2"
PEER_PING = b"ping from peer"
CLOSE_FROM_US = (4001, "bye from us: żółw ✓")
CLOSE_FROM_PEER = (4002, "bye from peer: ñandú ✓")
FRAGMENTS = 7
CASE_TIMEOUT = 60
# 16 MiB messages are part of the matrix; leave room for them.
MAX_SIZE = 64 << 20
PEER_WINDOW_BITS = 10
MODES = ("default", "no-ctx", "window")


def client_extensions(mode):
    """The extensions argument of connect() for a mode; None keeps the
    default, websockets as deployed (it offers permessage-deflate)."""
    if mode == "default":
        return None
    if mode == "no-ctx":
        return [ClientPerMessageDeflateFactory(
            server_no_context_takeover=True, client_no_context_takeover=True)]
    if mode == "window":
        return [ClientPerMessageDeflateFactory(
            server_max_window_bits=PEER_WINDOW_BITS, client_max_window_bits=PEER_WINDOW_BITS)]
    raise ValueError(f"unknown deflate mode {mode!r}")


def server_extensions(mode):
    """The extensions argument of serve() for a mode, as client_extensions."""
    if mode == "default":
        return None
    if mode == "no-ctx":
        return [ServerPerMessageDeflateFactory(
            server_no_context_takeover=True, client_no_context_takeover=True)]
    if mode == "window":
        return [ServerPerMessageDeflateFactory(
            server_max_window_bits=PEER_WINDOW_BITS, client_max_window_bits=PEER_WINDOW_BITS)]
    raise ValueError(f"unknown deflate mode {mode!r}")


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class CaseFailed(Exception):
    pass


async def wait_close(ws, code, reason=None):
    """Read (and echo) until the other side closes; demand its close code."""
    try:
        async for msg in ws:
            await ws.send(msg)
    except ConnectionClosed:
        pass
    rcvd = ws.close_rcvd if hasattr(ws, "close_rcvd") else None
    got_code = rcvd.code if rcvd is not None else ws.close_code
    got_reason = rcvd.reason if rcvd is not None else ws.close_reason
    if got_code != code:
        raise CaseFailed(f"close code {got_code} {got_reason!r}, want {code}")
    if reason is not None and got_reason != reason:
        raise CaseFailed(f"close reason {got_reason!r}, want {reason!r}")
    return f"closed {got_code} {got_reason!r}"


def split(msg, n):
    size = max(1, -(-len(msg) // n))
    return [msg[i:i + size] for i in range(0, len(msg), size)] or [msg]


async def run_kind(ws, kind):
    if kind in ("echo", "echo-fragmented"):
        msg = await ws.recv()
        if isinstance(msg, str):
            raw, typ = msg.encode("utf-8"), "text"
        else:
            raw, typ = msg, "binary"
        await ws.send(f"digest {typ} {len(raw)} {hashlib.sha256(raw).hexdigest()}")
        if kind == "echo-fragmented":
            parts = split(msg, FRAGMENTS)
            if len(parts) < 2:
                raise CaseFailed(f"message of {len(raw)} bytes too short to fragment")
            async def fragments():
                for part in parts:
                    yield part

            # websockets sends each item of an async iterator as one frame.
            await ws.send(fragments())
        else:
            await ws.send(msg)
        return await wait_close(ws, 1000)
    if kind == "idle":
        return await wait_close(ws, 1000)
    if kind == "ping-from-peer":
        waiter = await ws.ping(PEER_PING)
        await asyncio.wait_for(waiter, 10)
        await ws.send("pong-ok " + PEER_PING.hex())
        return await wait_close(ws, 1000)
    if kind == "subprotocol":
        await ws.send(f"protocol {ws.subprotocol or ''}")
        if ws.subprotocol != EXPECTED_PROTOCOL:
            raise CaseFailed(f"subprotocol {ws.subprotocol!r}, want {EXPECTED_PROTOCOL!r}")
        return await wait_close(ws, 1000)
    if kind == "close-from-us":
        return await wait_close(ws, *CLOSE_FROM_US)
    if kind == "close-from-peer":
        await ws.close(*CLOSE_FROM_PEER)
        await ws.wait_closed()
        if ws.close_sent is None or ws.close_rcvd is None:
            raise CaseFailed("closing handshake did not complete")
        return f"handshake done, peer echoed {ws.close_rcvd.code} {ws.close_rcvd.reason!r}"
    raise CaseFailed(f"unknown kind {kind!r}")


async def run_case(name, coro):
    try:
        detail = await asyncio.wait_for(coro, CASE_TIMEOUT)
        emit({"case": name, "ok": True, "detail": detail or ""})
    except CaseFailed as e:
        emit({"case": name, "ok": False, "detail": str(e)})
    except Exception as e:  # noqa: BLE001 - every failure is reported, never hidden
        emit({"case": name, "ok": False, "detail": f"{type(e).__name__}: {e}"})


async def client(base, cases):
    for item in cases:
        kind, name, mode = (item.split(":") + ["default"])[:3]

        async def one():
            protocols = OFFERED_PROTOCOLS if kind == "subprotocol" else None
            async with websockets.connect(
                f"{base}/{name}",
                extensions=client_extensions(mode),
                subprotocols=protocols,
                max_size=MAX_SIZE,
                ping_interval=None,
                close_timeout=10,
                open_timeout=10,
            ) as ws:
                return await run_kind(ws, kind)

        await run_case(name, one())


async def server():
    async def handler(ws):
        parts = ws.path.strip("/").split("/", 1)
        if len(parts) != 2:
            await ws.close(1008, "path must be /KIND/NAME")
            return
        await run_case(parts[1], run_kind(ws, parts[0]))

    async with contextlib.AsyncExitStack() as stack:
        ports = {}
        for mode in MODES:
            srv = await stack.enter_async_context(websockets.serve(
                handler,
                "127.0.0.1",
                0,
                extensions=server_extensions(mode),
                subprotocols=SERVER_PROTOCOLS,
                max_size=MAX_SIZE,
                ping_interval=None,
                close_timeout=10,
            ))
            ports[mode] = srv.sockets[0].getsockname()[1]
        emit({"ready": True, "ports": ports, "version": websockets.version.version})
        # The Go test owns this process: it ends it by closing stdin.
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)


def main(argv):
    if len(argv) >= 2 and argv[1] == "server":
        asyncio.run(server())
        return 0
    if len(argv) >= 3 and argv[1] == "client":
        emit({"ready": True, "version": websockets.version.version})
        asyncio.run(client(argv[2], argv[3:]))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
