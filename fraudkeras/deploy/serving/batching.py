"""Adaptive batching, off the event loop: requests queue up, and batch threads
merge whatever is waiting into one runtime call.

TF Serving's batching parameters, with its meaning: ``max_batch_size`` (rows in
one call; a larger request runs alone), ``batch_timeout_micros`` (how long a
thread waits for more requests before running a batch that is not full: 0 runs
what is queued at once, so a lone request is never delayed, while under load the
queue fills during each call and batches grow by themselves),
``num_batch_threads`` and a bounded queue (``max_queued_requests``): a request
that finds it full is refused at once (503 / UNAVAILABLE) instead of waiting
without bound. Only requests for the same model object are merged, so a hot
swap never mixes versions in one call. No web framework here: the REST and gRPC
front ends both submit and wait on a :class:`concurrent.futures.Future`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np

from fraudkeras.deploy.serving.errors import RequestError
from fraudkeras.deploy.serving.loading import ServedModel

log = logging.getLogger("fraudkeras")


@dataclass
class _Pending:
    model: ServedModel
    features: np.ndarray
    future: Future[np.ndarray] | asyncio.Future[np.ndarray]
    loop: asyncio.AbstractEventLoop | None = None  #: set for an asyncio future

    def wanted(self) -> bool:
        """Still waited for (not timed out or cancelled); marks a thread future running."""
        if self.loop is None:
            future: Future[np.ndarray] = self.future  # type: ignore[assignment]
            return future.set_running_or_notify_cancel()
        return not self.future.done()

    def deliver(self, result: np.ndarray | None, error: BaseException | None) -> None:
        """Answer a thread future (an asyncio one is answered on its loop)."""
        future: Future[np.ndarray] = self.future  # type: ignore[assignment]
        if error is None:
            future.set_result(result)  # type: ignore[arg-type]
        else:
            future.set_exception(error)


def _settle(future: Any, result: Any, error: BaseException | None) -> None:
    if future.done():  # timed out meanwhile
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


class QueueFull(RequestError):
    """The batching queue is full: the server is overloaded (503, retry later)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"server overloaded: {limit} requests already queued; retry later", 503)


class Batcher:
    """A bounded queue and the threads that empty it in merged runtime calls."""

    def __init__(
        self,
        *,
        max_batch_size: int,
        batch_timeout_micros: int,
        num_batch_threads: int,
        max_queued_requests: int,
        on_batch: Callable[[int], None] = lambda rows: None,
    ) -> None:
        self.max_batch_size = max_batch_size
        self.timeout = batch_timeout_micros / 1e6
        self.max_queued = max_queued_requests
        self.on_batch = on_batch
        self._queue: deque[_Pending] = deque()
        self._ready = threading.Condition()
        self._closed = False
        self._wake_pending = False  #: a :meth:`_wake` is scheduled on an event loop
        self._threads = [
            threading.Thread(target=self._work, name=f"batch-{i}", daemon=True)
            for i in range(num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, model: ServedModel, features: np.ndarray) -> Future[np.ndarray]:
        """Queue ``features`` for ``model``; the future holds float32 probabilities."""
        future: Future[np.ndarray] = Future()
        self._enqueue(_Pending(model, features, future))
        return future

    def submit_async(self, model: ServedModel, features: np.ndarray) -> asyncio.Future[np.ndarray]:
        """:meth:`submit` for an event loop: the answer is set on the loop's own
        future (cheaper than wrapping a thread future), and a batch thread is woken
        once the loop has taken in what it can now (see :meth:`_wake`)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        self._enqueue(_Pending(model, features, future, loop), wake=False)
        if not self._wake_pending:
            self._wake_pending = True
            loop.call_soon(self._wake)
        return future

    def _wake(self) -> None:
        """Wake a batch thread for what the loop queued since the last wake: one
        wake-up for the requests that arrived together, not one each (waking a
        thread can cost the loop its core while it still holds the GIL)."""
        self._wake_pending = False
        with self._ready:
            if self._queue:
                self._ready.notify()

    def _enqueue(self, pending: _Pending, *, wake: bool = True) -> None:
        with self._ready:
            if self._closed:
                raise RequestError("server is shutting down", 503)
            if len(self._queue) >= self.max_queued:
                raise QueueFull(self.max_queued)
            self._queue.append(pending)
            if wake:
                self._ready.notify()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def close(self, timeout: float = 10.0) -> None:
        """Refuse new requests, finish the queued ones, stop the threads."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._run(batch)

    def _next_batch(self) -> list[_Pending] | None:
        with self._ready:
            while not self._queue:
                if self._closed:
                    return None
                self._ready.wait()
            batch = [self._queue.popleft()]
            rows = len(batch[0].features)
            deadline = time.monotonic() + self.timeout
            while rows < self.max_batch_size:
                if self._queue:
                    following = self._queue[0]
                    size = len(following.features)
                    if following.model is not batch[0].model or rows + size > self.max_batch_size:
                        break
                    batch.append(self._queue.popleft())
                    rows += size
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    break
                self._ready.wait(remaining)
            if self._queue:
                self._ready.notify()  # another thread may start on what is left
            return batch

    def _run(self, batch: list[_Pending]) -> None:
        live = [p for p in batch if p.wanted()]
        if not live:  # every caller gave up (timeout or disconnect)
            return
        try:
            features = (
                live[0].features if len(live) == 1 else np.concatenate([p.features for p in live])
            )
            self.on_batch(len(features))
            probabilities = live[0].model.predict(features)
        except Exception as error:  # answered as a 500 by the front end that waits
            _deliver_all([(p, None, error) for p in live])
            return
        answers: list[tuple[_Pending, np.ndarray | None, BaseException | None]] = []
        start = 0
        for pending in live:
            end = start + len(pending.features)
            answers.append((pending, probabilities[start:end], None))
            start = end
        _deliver_all(answers)


def _deliver_all(answers: list[tuple[_Pending, np.ndarray | None, BaseException | None]]) -> None:
    """Answer a batch: thread futures directly, and each event loop's futures in one
    call (one wake-up of the loop per batch, not per request)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, Any, BaseException | None]]] = {}
    for pending, result, error in answers:
        if pending.loop is None:
            pending.deliver(result, error)
        else:
            by_loop.setdefault(pending.loop, []).append((pending.future, result, error))
    for loop, settled in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(_settle_all, settled)


def _settle_all(settled: list[tuple[Any, Any, BaseException | None]]) -> None:
    for future, result, error in settled:
        _settle(future, result, error)
