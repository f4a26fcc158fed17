"""A loopback SMTP server for benchmarks above what one Python process serves (about 1,000
messages/s on 2 cores): several of these processes listen on one port with SO_REUSEPORT and the
kernel spreads the connections among them. Each answers DATA after --delay seconds and appends a
line per accepted message to --log: its time.monotonic() (CLOCK_MONOTONIC, the same clock in every
process of the machine) and the recipients. It prints "ready" once it listens and runs until
SIGTERM.

    python -m devtools.smtp_sink --port 2525 --delay 0.05 --log /tmp/sink-1.log
"""

import argparse
import asyncio
import signal
import time
from typing import TextIO

from aiosmtpd.smtp import SMTP, Envelope, Session


class SinkHandler:
    def __init__(self, log: TextIO, delay: float) -> None:
        self.log, self.delay = log, delay

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.log.write(f"{time.monotonic():.6f} {','.join(envelope.rcpt_tos)}\n")
        return "250 OK"


async def serve(port: int, delay: float, log_path: str) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    with open(log_path, "a", buffering=1) as log:
        handler = SinkHandler(log, delay)
        server = await loop.create_server(lambda: SMTP(handler, hostname="sink"), "127.0.0.1", port,
                                          reuse_port=True)
        print("ready", flush=True)
        await stop.wait()
        server.close()
        await server.wait_closed()


def main() -> None:
    parser = argparse.ArgumentParser(description="SMTP sink for benchmarks (SO_REUSEPORT)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.delay, args.log))


if __name__ == "__main__":
    main()
