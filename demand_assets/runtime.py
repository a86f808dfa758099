"""Process-level helpers for batch work."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector around a batch.

    Decoding a batch allocates hundreds of thousands of small dicts that live until the batch is
    written; the collector's generation scans over them cost more than the work itself and find
    nothing (the records hold no cycles). Reference counting still frees everything.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
