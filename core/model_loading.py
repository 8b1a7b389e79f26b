"""One lock for importing the transformers stack, shared by every model we load.

The embedder (sentence-transformers) and the support verifier (transformers)
load on different threads: the verifier is prefetched while the engine loads
the embedder for retrieval. transformers' lazily imported modules are not safe
to import from two threads at once: the second one was seen to fail with
"cannot import name 'AutoModelForSequenceClassification' from 'transformers'",
which silently turned the verifier off for that run. Importing under this lock
costs nothing (a second thread would wait for the same imports anyway); the
models themselves still load side by side.
"""
from __future__ import annotations

import threading

IMPORT_LOCK = threading.RLock()
