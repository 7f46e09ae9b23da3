"""Every call that crosses into Ray goes through here: starting and joining a Ray runtime,
actor classes and their options, named handles, `.remote` calls, kills, and the translation
of Ray's errors into ours. Nothing else in the tree calls `ray` directly (the tests' fixtures
and the benchmarks aside), so the rest is plain Python that can be read and tested as such.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import ray
from ray.exceptions import RayActorError, RayTaskError

from actors.config import ActorConfig
from actors.refusals import Refusal

log = logging.getLogger(__name__)

# A category actor: no CPU reserved (it mostly waits), restarted by Ray when its process
# dies, never retried by Ray (our client retries with the same request ids instead), and
# many concurrent calls (each a batch) interleaving at their awaits.
CATEGORY_OPTIONS: dict[str, Any] = {
    "num_cpus": 0,
    "max_restarts": -1,
    "max_task_retries": 0,
    "max_concurrency": 1000,
}
# A waiting room's queue actor (one per event that has one): the same, with fewer calls at once
# (joins are group-committed, status reads are one call per gateway a second).
QUEUE_OPTIONS: dict[str, Any] = {
    "num_cpus": 0,
    "max_restarts": -1,
    "max_task_retries": 0,
    "max_concurrency": 1000,
}
HUB_NAME = "feed-hub"
HUB_OPTIONS: dict[str, Any] = {
    "num_cpus": 0,
    "max_restarts": -1,
    "max_task_retries": 0,
    "max_concurrency": 10_000,
}


class Unavailable(Exception):
    """An actor could not be reached after every retry: a dependency is down (503)."""


class Retired(Exception):
    """Raised by an actor that is shutting down: the caller retries and gets a fresh one."""


class Missing(Exception):
    """Raised by a category actor whose category does not exist (any more)."""


def category_actor_name(category_id: int) -> str:
    return f"category:{category_id}"


def queue_actor_name(event_id: int) -> str:
    return f"queue:{event_id}"


# -- the Ray runtime of this process ----------------------------------------------------------


def start_ray(address: str | None, namespace: str, object_store_bytes: int) -> bool:
    """Connect this process to Ray; returns True when it started a local runtime it owns."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address:
        ray.init(address=address, namespace=namespace, logging_level=logging.WARNING)
        return False
    # address="local" always starts a private runtime, never one that happens to be running.
    ray.init(
        address="local",
        namespace=namespace,
        include_dashboard=False,
        object_store_memory=object_store_bytes,
        logging_level=logging.WARNING,
        log_to_driver=True,
    )
    log.info("started a local Ray runtime")
    return True


def stop_ray(owned: bool) -> None:
    """Disconnect; a runtime this process started goes down with all its workers."""
    if ray.is_initialized():
        ray.shutdown()
    if owned:
        log.info("stopped the local Ray runtime")


# -- category actors ----------------------------------------------------------------------------


class CategoryHandles:
    """Finds (or starts) each category's named actor and calls it, retrying a call that met a
    dead or retiring actor. A retried call carries the same request ids, so it cannot hold or
    sell twice (see docs/idempotency.md)."""

    def __init__(self, config: ActorConfig, actor: type) -> None:
        self._config = config
        self._class: Any = ray.remote(**CATEGORY_OPTIONS)(actor)
        self._handles: dict[int, Any] = {}
        # Calls resent after meeting a dead or retiring actor (for tests and the fault figures).
        self.retried = 0

    async def call(self, category_id: int, method: str, *args: Any) -> Any:
        """`method(*args)` on the category's actor; `Missing` when the category is gone,
        `Unavailable` when no actor answered after every retry."""
        delay = 0.02
        for _ in range(self._config.call_retries):
            handle = self._handle(category_id)
            try:
                return await getattr(handle, method).remote(*args)
            except RayTaskError as exc:
                cause = exc.as_instanceof_cause()  # type: ignore[no-untyped-call]
                if isinstance(cause, Missing):
                    self._forget(category_id, kill=True)
                    raise Missing(str(cause)) from None
                if not isinstance(cause, Retired):
                    raise
            except RayActorError:
                pass
            self._forget(category_id)
            self.retried += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
        raise Unavailable(f"category {category_id} did not answer")

    def _handle(self, category_id: int) -> Any:
        handle = self._handles.get(category_id)
        if handle is None:
            handle = self._class.options(
                name=category_actor_name(category_id),
                namespace=self._config.namespace,
                get_if_exists=True,
                lifetime="detached",
            ).remote(self._config, category_id)
            self._handles[category_id] = handle
        return handle

    def _forget(self, category_id: int, kill: bool = False) -> None:
        handle = self._handles.pop(category_id, None)
        if kill and handle is not None:
            ray.kill(handle, no_restart=True)


class QueueHandles:
    """Finds (or starts) each event's queue actor and calls it, as `CategoryHandles` does for
    categories. `config` is the queue actor's own (it carries `namespace` and `call_retries`)."""

    def __init__(self, config: Any, actor: type) -> None:
        self._config = config
        self._class: Any = ray.remote(**QUEUE_OPTIONS)(actor)
        self._handles: dict[int, Any] = {}
        self.retried = 0

    async def call(self, event_id: int, method: str, *args: Any) -> Any:
        """`method(*args)` on the event's queue actor; `Missing` when the event has no waiting
        room (any more), a `Refusal` the actor raised as is, `Unavailable` when no actor
        answered after every retry."""
        delay = 0.02
        for _ in range(self._config.call_retries):
            handle = self._handle(event_id)
            try:
                return await getattr(handle, method).remote(*args)
            except RayTaskError as exc:
                cause = exc.as_instanceof_cause()  # type: ignore[no-untyped-call]
                if isinstance(cause, Missing):
                    self._forget(event_id, kill=True)
                    raise Missing(str(cause)) from None
                if isinstance(cause, Refusal):
                    raise Refusal(cause.message, cause.reason) from None
                if not isinstance(cause, Retired):
                    raise
            except RayActorError:
                pass
            self._forget(event_id)
            self.retried += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
        raise Unavailable(f"the queue of event {event_id} did not answer")

    def _handle(self, event_id: int) -> Any:
        handle = self._handles.get(event_id)
        if handle is None:
            handle = self._class.options(
                name=queue_actor_name(event_id),
                namespace=self._config.namespace,
                get_if_exists=True,
                lifetime="detached",
            ).remote(self._config, event_id)
            self._handles[event_id] = handle
        return handle

    def _forget(self, event_id: int, kill: bool = False) -> None:
        handle = self._handles.pop(event_id, None)
        if kill and handle is not None:
            ray.kill(handle, no_restart=True)


def wake_current_actor() -> None:
    """Called in an actor's constructor: queue a `ready` call to itself, so an actor that Ray
    restarted after its process died loads (and its holds expire) without waiting for a
    caller. Unconditional: asking Ray whether this is a restart costs a GCS query, and a fresh
    actor was started by a caller who is about to load it anyway."""
    if not ray.is_initialized():
        return
    try:
        ray.get_runtime_context().current_actor.ready.remote()
    except Exception:
        log.exception("an actor could not wake itself; its next call loads it")


def retire_current_actor() -> None:
    """End the actor this code runs in, for good: the next call starts a fresh one."""
    ray.kill(ray.get_runtime_context().current_actor, no_restart=True)


# -- the feed hub -----------------------------------------------------------------------------


class HubHandle:
    """The namespace's feed hub, created by whoever asks first; it outlives any one gateway."""

    def __init__(self, namespace: str, hub: type) -> None:
        self._namespace = namespace
        self._class: Any = ray.remote(hub).options(
            name=HUB_NAME,
            namespace=namespace,
            get_if_exists=True,
            lifetime="detached",
            **HUB_OPTIONS,
        )
        self._handle: Any = None

    def _hub(self) -> Any:
        if self._handle is None:
            self._handle = self._class.remote()
        return self._handle

    def reconnect(self) -> None:
        """Forget the handle: the next call finds (or starts) the hub again."""
        self._handle = None

    async def publish(self, items: list[Any]) -> None:
        await self._hub().publish.remote(items)

    async def poll(self, cursor: int | None, wait_seconds: float) -> Any:
        return await self._hub().poll.remote(cursor, wait_seconds)

    async def ping(self) -> int:
        answer: int = await self._hub().ping.remote()
        return answer
