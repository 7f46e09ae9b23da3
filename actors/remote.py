"""Every call that crosses into Ray goes through here: starting and joining a Ray runtime,
actor classes and their options, named handles, `.remote` calls, kills, and the translation
of Ray's errors into ours. Nothing else in the tree calls `ray` directly (the tests' fixtures
and the benchmarks aside), so the rest is plain Python that can be read and tested as such.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError, RayTaskError

from actors import spares
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
# A waiting room's queue actor (one per event that has one): the same options.
QUEUE_OPTIONS: dict[str, Any] = dict(CATEGORY_OPTIONS)
# Where category actors go (ACTOR_PLACEMENT). Zero-CPU actors under Ray's default strategy
# pack onto whichever node the scheduler likes (6/2, 4/4, 7/1 splits were seen on two nodes):
# SPREAD places each new activation on the next node, so a node's loss takes its share only.
# `node-label` spreads over the nodes whose Ray labels match ACTOR_NODE_LABELS (a hard rule:
# with no such node alive, an activation waits, and its callers get 503).
PLACEMENTS = {"spread": "SPREAD", "pack": "DEFAULT", "node-label": "SPREAD"}
# A restarted actor's call to itself is retried this often while Ray still restarts it.
WAKE_ATTEMPTS, WAKE_RETRY_SECONDS = 60, 0.5
HUB_NAME = "feed-hub"
# The hub lives on the head node, as Ray's own state actors do (`node:__internal_head__`):
# without GCS fault tolerance the head's loss stops the whole cluster anyway, so pinning the
# hub there adds no failure, and a worker node's loss never restarts it.
HEAD_NODE_RESOURCE = "node:__internal_head__"
HUB_OPTIONS: dict[str, Any] = {
    "num_cpus": 0,
    "max_restarts": -1,
    "max_task_retries": 0,
    "max_concurrency": 10_000,
    "resources": {HEAD_NODE_RESOURCE: 0.001},
}


T = TypeVar("T")

# Blocking calls to Ray's control store (finding a named actor, listing nodes) run on threads
# of their own: while the store handles a node's loss they can block for seconds, and on the
# event loop's default executor (6 threads on 2 cores) they would hold up everything else
# queued there, such as resolving the database's address for a new connection.
_CONTROL_THREADS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ray-control")


async def in_control_thread(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` on a control-store thread, awaited without blocking the loop."""
    return await asyncio.get_running_loop().run_in_executor(_CONTROL_THREADS, function, *args)


class Unavailable(Exception):
    """An actor could not be reached after every retry, or did not answer within the call's
    deadline (ACTOR_CALL_TIMEOUT_SECONDS): a dependency is down (503 with Retry-After)."""


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
    spares.preload_in_workers()
    for attempt in range(1, LOCAL_START_ATTEMPTS + 1):
        before = child_pids()
        try:
            # address="local" always starts a private runtime, never one already running.
            ray.init(
                address="local",
                namespace=namespace,
                include_dashboard=False,
                object_store_memory=object_store_bytes,
                logging_level=logging.WARNING,
                log_to_driver=True,
            )
            break
        except Exception as exc:
            # Ray gives its raylet a fixed 30 s to register (not configurable); on a loaded
            # 2-core machine it missed that once and `boxoffice serve` exited. What that try
            # started is ended, and the next try starts afresh.
            if RAYLET_TIMED_OUT not in str(exc) or attempt == LOCAL_START_ATTEMPTS:
                raise
            ray.shutdown()
            ended = end_ray_processes_started_since(before)
            log.warning("Ray's node did not start in time (%d processes ended): again", ended)
    log.info("started a local Ray runtime")
    return True


LOCAL_START_ATTEMPTS = 3
RAYLET_TIMED_OUT = "timed out during startup"


def child_pids() -> set[int]:
    import psutil

    return {child.pid for child in psutil.Process().children(recursive=True)}


def end_ray_processes_started_since(before: set[int]) -> int:
    """End the Ray processes this process started after `before` was taken (a failed start
    leaves them running): new children running Ray's binaries or modules, nothing else."""
    import psutil

    doomed = []
    for child in psutil.Process().children(recursive=True):
        if child.pid in before:
            continue
        with contextlib.suppress(psutil.Error):
            command = " ".join(child.cmdline())
            if child.name() in ("gcs_server", "raylet") or f"{os.sep}ray{os.sep}" in command:
                doomed.append(child)
    for process in doomed:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(doomed, timeout=10)
    return len(doomed)


def stop_ray(owned: bool) -> None:
    """Disconnect; a runtime this process started goes down with all its workers."""
    if ray.is_initialized():
        ray.shutdown()
    if owned:
        log.info("stopped the local Ray runtime")


# -- category actors ----------------------------------------------------------------------------


class NamedActors:
    """Finds (or starts) the named, detached actor of each key (a category, an event's queue)
    and calls it, retrying a call that met a dead or retiring actor, all within a deadline.
    A retried call carries the same request ids, so it cannot hold or sell twice (see
    docs/idempotency.md).

    `config` carries `namespace`, `call_retries`, `call_timeout_seconds` and
    `start_timeout_seconds`; the actor is built as `actor(config, key)`."""

    def __init__(self, config: Any, actor: Any, name: Callable[[int], str], describe: str) -> None:
        self._config = config
        self._class = actor
        self._name = name
        self._describe = describe  # "category {}": how errors name a key
        self._handles: dict[int, Any] = {}
        # Keys that have answered this process: their calls get the short deadline, also
        # while Ray restarts their actor elsewhere (a lost node) or after passivation (callers
        # get 503 with Retry-After meanwhile, and the restart goes on without them).
        self._answered: set[int] = set()
        # Calls resent after meeting a dead or retiring actor (for tests and the fault figures).
        self.retried = 0

    async def call(self, key: int, method: str, *args: Any) -> Any:
        """`method(*args)` on the key's actor; `Missing` when its subject is gone, a `Refusal`
        the actor raised as is, `Unavailable` when no actor answered after every retry or
        within the deadline.

        The deadline covers the retries too: an actor on a node that died answers nothing
        until Ray declares the node dead (about 16 s by default), and a caller must not wait
        that long. The call may still run after we stopped waiting; a retry carries the same
        request ids, so the actor answers it once (see docs/idempotency.md).

        A key that never answered this process gets the longer start deadline: its first call
        may wait for a worker process to start and the actor to rebuild from PostgreSQL, which
        took over 5 s on a loaded 2-core machine (at a gateway's start, when it activates every
        category with holds at once)."""
        deadline = self.deadline(key)
        try:
            async with asyncio.timeout(deadline):
                answer = await self._call_retrying(key, method, *args)
        except TimeoutError:
            raise Unavailable(
                f"{self._describe.format(key)} did not answer within {deadline:g} s"
            ) from None
        self._answered.add(key)
        return answer

    def deadline(self, key: int) -> float:
        """Seconds a call to the key's actor may take, its retries included (see `call`)."""
        config = self._config
        if key in self._answered:
            return float(config.call_timeout_seconds)
        return float(config.start_timeout_seconds)

    async def _call_retrying(self, key: int, method: str, *args: Any) -> Any:
        delay = 0.02
        for _ in range(self._config.call_retries):
            handle = await self._handle(key)
            try:
                return await getattr(handle, method).remote(*args)
            except RayTaskError as exc:
                # The actor's own exception, as it raised it: `as_instanceof_cause` would
                # build a look-alike without its attributes (a refusal's reason, say).
                cause = exc.cause
                if isinstance(cause, Missing):
                    self._forget(key, kill=True)
                    raise Missing(str(cause)) from None
                if isinstance(cause, Refusal):
                    raise cause from None
                if not isinstance(cause, Retired):
                    raise
            except RayActorError:
                pass
            self._forget(key)
            self.retried += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
        raise Unavailable(f"{self._describe.format(key)} did not answer")

    async def _handle(self, key: int) -> Any:
        handle = self._handles.get(key)
        if handle is None:
            # Finding a named actor is a blocking round trip to Ray's control store, which is
            # slow while it handles a node's loss: off the event loop, so the deadline holds.
            handle = await in_control_thread(
                self._class.options(
                    name=self._name(key),
                    namespace=self._config.namespace,
                    get_if_exists=True,
                    lifetime="detached",
                ).remote,
                self._config,
                key,
            )
            self._handles[key] = handle
        return handle

    def _forget(self, key: int, kill: bool = False) -> None:
        handle = self._handles.pop(key, None)
        if kill and handle is not None:
            self._answered.discard(key)
            ray.kill(handle, no_restart=True)


class CategoryHandles(NamedActors):
    """The category actors, placed by ACTOR_PLACEMENT."""

    def __init__(self, config: ActorConfig, actor: type) -> None:
        options = {**CATEGORY_OPTIONS, "scheduling_strategy": PLACEMENTS[config.placement]}
        if config.placement == "node-label":
            options["label_selector"] = dict(config.node_labels)
        super().__init__(config, ray.remote(**options)(actor), category_actor_name, "category {}")


class QueueHandles(NamedActors):
    """The waiting rooms' queue actors, one per event that has one."""

    def __init__(self, config: Any, actor: type) -> None:
        remote: Any = ray.remote(**QUEUE_OPTIONS)(actor)
        super().__init__(config, remote, queue_actor_name, "the queue of event {}")


def wake_current_actor() -> None:
    """Called in an actor's constructor: send a `ready` call to itself, so an actor that Ray
    restarted after its process (or node) died loads, expires its holds and republishes its
    state without waiting for a caller. Unconditional: asking Ray whether this is a restart
    costs a GCS query, and a fresh actor was started by a caller who is about to load it.

    From a thread, retried: a call an actor sends itself while Ray still counts it as
    restarting fails at once ("the actor is restarting"), which lost the wake-up in about
    half the feed hub's restarts in the multi-node test."""
    if not ray.is_initialized():
        return
    try:
        handle = ray.get_runtime_context().current_actor
    except Exception:
        log.exception("an actor could not wake itself; its next call loads it")
        return
    threading.Thread(target=_wake, args=(handle,), name="wake", daemon=True).start()


def _wake(handle: Any) -> None:
    for _ in range(WAKE_ATTEMPTS):
        try:
            # Waited on as a future, not `ray.get`: in an async actor's process Ray warns
            # that `ray.get` blocks the event loop, from any thread (a false alarm per start).
            handle.ready.remote().future().result()
        except ActorUnavailableError:
            time.sleep(WAKE_RETRY_SECONDS)
            continue
        except Exception:  # it answered (a refusal, an outage): its next caller sees that
            return
        return
    log.warning("an actor could not wake itself; its next call loads it")


def retire_current_actor() -> None:
    """End the actor this code runs in, for good: the next call starts a fresh one."""
    ray.kill(ray.get_runtime_context().current_actor, no_restart=True)


# -- the feed hub -----------------------------------------------------------------------------


class HubHandle:
    """The namespace's feed hub, created by whoever asks first; it outlives any one gateway.
    Every call has a deadline (`timeout`, beyond a poll's own wait): a hub on a lost node
    must not hold a publisher or a follower for Ray's node-failure detection time."""

    def __init__(self, namespace: str, hub: type, timeout: float = 5.0) -> None:
        self._namespace = namespace
        self._timeout = timeout
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
            resync = functools.partial(republish_live_categories, self._namespace, self._timeout)
            self._handle = self._class.remote(resync)
        return self._handle

    def reconnect(self) -> None:
        """Forget the handle: the next call finds (or starts) the hub again."""
        self._handle = None

    async def publish(self, items: list[Any]) -> int:
        """Answers the hub's generation. A hub ended for good (`ray kill`) is forgotten, so
        the next try finds or starts its successor: a category holding the dead handle would
        retry it forever and, with its last state unsent, never passivate."""
        try:
            async with asyncio.timeout(self._timeout):
                generation: int = await self._hub().publish.remote(items)
        except ActorDiedError:
            self.reconnect()
            raise
        return generation

    async def poll(self, cursor: int | None, wait_seconds: float, generation: int | None) -> Any:
        call = self._hub().poll.remote(cursor, wait_seconds, generation)
        # asyncio.timeout, not wait_for: wait_for can swallow a cancellation that lands as the
        # call completes (CPython #86296), and a cancelled follower then polled on forever.
        async with asyncio.timeout(wait_seconds + self._timeout):
            return await call

    async def ping(self) -> int:
        async with asyncio.timeout(self._timeout):
            answer: int = await self._hub().ping.remote()
        return answer


async def republish_live_categories(namespace: str, deadline: float) -> int:
    """Ask every live category actor of `namespace` to republish its whole state (a restarted
    hub's first call). Only live actors are named in Ray: this never activates a category."""
    prefix = category_actor_name(0).removesuffix("0")
    named = await in_control_thread(ray.util.list_named_actors, True)
    names = [n["name"] for n in named if n["namespace"] == namespace]
    names = [name for name in names if name.startswith(prefix)]

    async def ask(name: str) -> bool:
        try:
            handle = await in_control_thread(ray.get_actor, name, namespace)
            async with asyncio.timeout(deadline):
                answer: bool = await handle.republish.remote()
        except Exception:  # gone meanwhile, or on a lost node: it republishes when it returns
            return False
        return answer

    return sum(await asyncio.gather(*(ask(name) for name in names)))


def engine_answers() -> bool:
    """Does the Ray cluster's control store (GCS) answer, with at least one live node? A
    blocking call: run it in a thread, with a deadline."""
    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    return any(node.get("Alive") for node in nodes)
