"""A real WebSocket origin (Debian's python3-websockets) for the tunnel tests.

    ws_origin.py PORT

Any path echoes every message, except: .../close-4001 closes at once with code 4001;
.../hello sends "hello" then echoes. Prints READY PORT when listening."""

import asyncio
import sys

import websockets


async def handler(ws, path=None):
    path = path or ws.path
    if path.endswith("/close-4001"):
        await ws.close(4001, "origin says bye")
        return
    if path.endswith("/hello"):
        await ws.send("hello")
    try:
        async for message in ws:
            await ws.send(message)
    except websockets.ConnectionClosed:
        pass


async def main(port):
    async with websockets.serve(handler, "127.0.0.1", port, max_size=8 * 1024 * 1024,
                                ping_interval=None, max_queue=None, backlog=4096):
        print("READY %d" % port, flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
