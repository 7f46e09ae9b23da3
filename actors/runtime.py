"""Starting and stopping the Ray runtime: join RAY_ADDRESS, or start a small local one.

The only other modules that import ray are the actor hosts and the engine client.
"""

from __future__ import annotations

import logging
import os

import ray

log = logging.getLogger(__name__)


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
