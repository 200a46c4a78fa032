"""Questions asked from the machine itself: `anchor run --question TEXT` and `--console`.

They take the same path as a viewer's question from the broker (rate limit, moderation, the
store, the desk), so what an operator tries at the terminal is what a viewer would get.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from anchor.questions.reception import Reception

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 64 * 1024


async def read_console(reception: Reception) -> None:
    """Questions typed on standard input, one per line; at the end of input the show goes on."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_LINE_BYTES)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    log.info("type a question and press Enter to ask it on air")
    while line := await reader.readline():
        text = line.decode("utf-8", errors="replace").strip()
        if text:
            outcome = await reception.take_local(text, "console")
            log.info("question from the console: %s", outcome)
    await asyncio.Event().wait()
