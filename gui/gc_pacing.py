"""Keeps Python's cyclic garbage collector from stalling the window while an answer streams.

A full collection (generation 2) traverses every container object the
process holds. Most of them live as long as the app: modules, classes and
functions (after the imports of a window and its engine, 42k objects took a
full collection 27 ms here), then the cards of finished answers. A streaming
answer allocates fast enough to trigger one full collection per 4,000-token
answer at 5,000 tokens/s, and in a window holding 50k tokens of conversation
it took 60 ms: the largest stall left in the stream bench (issue 19).

So the survivors are frozen (`gc.freeze`, the permanent generation, which
collections skip) whenever the app is between answers:

- `settle()`: when the models have loaded and after each answer: collect what
  is not frozen yet (only what appeared since the last settle, a few ms), then
  freeze the rest;
- `release()`: when the conversation's messages are dropped (another
  conversation opens) or the app shuts down: unfreeze, so the dropped
  messages' garbage can be collected, collect once and freeze again. That
  pass is a full one (~60 ms), taken on the user's own click that re-renders
  the chat anyway, instead of at a random moment of the next stream.

Garbage that becomes unreachable while frozen waits for the next `release`;
a frozen object that is freed by its reference count (most are) goes at once.
"""
from __future__ import annotations

import gc


def settle() -> None:
    """Collect what appeared since the last settle, then freeze the survivors."""
    gc.collect()  # frozen objects are skipped, so this costs what the last answer allocated
    gc.freeze()


def release(collect: bool = True) -> None:
    """Let frozen objects be collected again (all of them, once, when `collect`), then freeze the survivors."""
    gc.unfreeze()
    if collect:
        settle()
