"""Spare worker processes, started ahead so that an activation does not wait for one.

A category's first call used to wait for Ray to start a Python process and for that process
to import the actor's code: about 0.55 s of CPU (0.30 s a bare Ray worker, 0.24 s the import),
most of a quiet activation of 0.7 to 0.86 s, and seconds when activations queue for CPU. Ray
places a new actor on an idle worker of the same job and runtime environment when its node
has one, and its raylet starts such workers on request: `PrestartWorkers`, the call Ray's own
task submitter makes when tasks back up, which Ray's Python API does not offer (so it is made
here over Ray's gRPC channel, with Ray's own stubs and token). Hence:

- every worker imports the actor code while it starts (`preload`, run as Ray's worker setup
  hook), so a spare is ready to host a category at once;
- a gateway that starts stocks its node with `ACTOR_SPARE_WORKERS` spares of its job, and
  every category actor that starts counts the spares of its job left on its node and asks
  the node for the missing ones: the target holds on every node where categories activate
  (on a node of a cluster, from its first activation on).

A spare is only a process: it belongs to no category until Ray places an actor on it, so the
one authority per category is still Ray's named actor. Spares are best-effort: when none is
left (a burst of activations), Ray starts a process for the actor as it did before, and when
the raylet cannot be reached, nothing but the head start is lost.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import ray
from ray._private.ray_constants import WORKER_PROCESS_SETUP_HOOK_ENV_VAR

log = logging.getLogger(__name__)

# What each worker of a Boxoffice job imports while it starts: the actors Ray may place on it.
PRELOADED = ("actors.category", "actors.queue_actor", "actors.feed")
PRELOAD_HOOK = f"{__name__}.preload"
# A spare outlives Ray's idle-worker reaping for this long; the next activation on its node
# replaces one that was reaped after it.
KEEP_ALIVE_SECONDS = 600
# Spares asked for at once, a wait, and a count again: at most this many rounds per spare.
ASK_AT_ONCE, ASK_INTERVAL_SECONDS, ROUNDS_PER_SPARE = 2, 0.5, 4
LOCK_NAME = "boxoffice-spares.lock"
# The most spares one job keeps on a node, whatever it is configured with (ACTOR_SPARE_WORKERS
# is bounded the same at start): each is a process of ~70 MB.
MAX_SPARES = 64
RPC_TIMEOUT_SECONDS = 5.0
IDLE_TITLE = "ray::IDLE"


def preload() -> None:
    """Run by every worker process of a node set up by `preload_in_workers`."""
    for module in PRELOADED:
        importlib.import_module(module)


def preload_in_workers() -> None:
    """Before a local Ray runtime starts: its workers run `preload` as they start.

    Through the variable Ray's own `worker_process_setup_hook` sets, in the raylet's
    environment, which its workers inherit. The documented way, a job's runtime environment,
    sends each worker start through Ray's runtime-environment agent: 0.21 s more CPU per
    process (0.51 s against 0.30 s for a bare worker), which a loaded node pays per
    activation. On a cluster, nodes get the variable from `ray start`'s environment
    (docs/deployment.md); a node without it still gets spares, which import at activation."""
    os.environ.setdefault(WORKER_PROCESS_SETUP_HOOK_ENV_VAR, PRELOAD_HOOK)


def keep_node_stocked(target: int) -> None:
    """Top this node up to `target` spares of this process's job, from a thread (it reads
    /proc, makes blocking calls and waits between them). Called by every category actor
    that starts (it may have taken a spare) and by a gateway that starts (a new job has
    none); a no-op where Ray is not initialized."""
    target = capped(target)
    if target == 0 or not ray.is_initialized():
        return
    threading.Thread(target=_stock, args=(target,), name="spares", daemon=True).start()


def restock_after_start(target: int) -> None:
    """In a category actor's constructor: it may have taken a spare, so the node gets another.
    Nothing outside a Ray worker (a test that builds the class in its own process)."""
    if ray.is_initialized() and ray.get_runtime_context().worker.mode == ray.WORKER_MODE:
        keep_node_stocked(target)


def capped(target: int) -> int:
    return max(0, min(target, MAX_SPARES))


def _stock(target: int) -> None:
    try:
        with _node_lock() as ours:
            if not ours:  # another process of this node is stocking it right now
                return
            job, raylet = _job_hex(), _local_raylet()
            raylet_pid = _raylet_pid()
            for _ in range(ROUNDS_PER_SPARE * target):
                missing = target - len(spares_of(raylet_pid, job))
                if missing <= 0:
                    return
                # A raylet starts at most a couple of processes at once (its startup
                # concurrency) and drops the rest of a request: ask for a few, count again.
                prestart(raylet, min(missing, ASK_AT_ONCE))
                time.sleep(ASK_INTERVAL_SECONDS)
    except Exception as exc:  # a head start lost: the next activation starts a process
        log.warning("could not stock spare workers: %s", exc)


@contextlib.contextmanager
def _node_lock() -> Iterator[bool]:
    """One stocker per node at a time: a burst of activations would each see the same
    shortfall and ask for it again."""
    path = Path(_node().get_session_dir_path()) / LOCK_NAME
    with open(path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def spares_of(raylet_pid: int, job_hex: str) -> list[int]:
    """Pids of the raylet's workers of the job that host nothing yet: idle ones, and ones
    still starting (which may be for an actor waiting on them: counting them too only delays
    a spare to the next activation, where not counting them could overshoot the target)."""
    found = []
    for child in psutil.Process(raylet_pid).children():
        try:
            if not _hosts_nothing(child) or child.environ().get("RAY_JOB_ID") != job_hex:
                continue
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        found.append(child.pid)
    return found


def _hosts_nothing(process: psutil.Process) -> bool:
    if process.name() == IDLE_TITLE:
        return True
    # Ray retitles a worker once it has connected (`ray::IDLE`, then `ray::<actor class>`).
    return any(part.endswith("default_worker.py") for part in process.cmdline())


def prestart(address: str, count: int) -> None:
    """Ask the raylet at `address` to start `count` workers for this process's job and its
    runtime environment, if it has one (the actors this job creates must fit them)."""
    # Ray's generated stubs and gRPC helper: the same ones Ray's dashboard uses to reach a
    # raylet, including the cluster's authentication token.
    from ray._private.grpc_utils import init_grpc_channel
    from ray._private.utils import get_runtime_env_info
    from ray.core.generated import common_pb2, node_manager_pb2, node_manager_pb2_grpc
    from ray.runtime_env import RuntimeEnv

    messages: Any = node_manager_pb2  # generated code, untyped
    stubs: Any = node_manager_pb2_grpc
    common: Any = common_pb2
    context: Any = ray.get_runtime_context()
    request = messages.PrestartWorkersRequest(
        language=common.PYTHON,
        job_id=bytes.fromhex(context.get_job_id()),
        num_workers=count,
        keep_alive_duration_secs=KEEP_ALIVE_SECONDS,
    )
    environment = context.get_runtime_env_string()
    if environment and environment != "{}":
        info = get_runtime_env_info(RuntimeEnv.deserialize(environment))
        request.runtime_env_info.CopyFrom(info)
    channel = init_grpc_channel(address)
    try:
        stubs.NodeManagerServiceStub(channel).PrestartWorkers(request, timeout=RPC_TIMEOUT_SECONDS)
    finally:
        channel.close()


def _job_hex() -> str:
    return str(ray.get_runtime_context().get_job_id())


def _node() -> Any:
    """Ray's record of the node this process is connected to (set by `ray.init`)."""
    node = ray._private.worker.global_worker.node
    if node is None:
        raise LookupError("this process is not connected to Ray")
    return node


def _local_raylet() -> str:
    node = _node()
    return f"{node.node_ip_address}:{node.node_manager_port}"


def _raylet_pid() -> int:
    """A worker's parent is its raylet; a driver finds its node's raylet by its socket."""
    if ray.get_runtime_context().worker.mode == ray.WORKER_MODE:
        return os.getppid()
    socket = f"--raylet_socket_name={_node().raylet_socket_name}"
    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] == "raylet" and socket in (process.info["cmdline"] or ()):
            return int(process.pid)
    raise LookupError("no raylet of this node found")
