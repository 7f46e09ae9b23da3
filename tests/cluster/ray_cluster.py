"""Two Ray nodes on this machine, both on loopback, for the multi-node tests: a head and a
worker started with Ray's own `ray.cluster_utils.Cluster`, driven by the test over stdin.

Run as `python -m tests.cluster.ray_cluster NAMESPACE` in a session of its own: every Ray
process it starts is in that session, so the test can end them all by process group whatever
happens. It prints `{"address": ...}` once both nodes are up, then answers one JSON line per
command: `actors` (category actors per node), `where NAME,...` (the node of each named
actor), `kill-hub` (the feed hub's process dies and Ray restarts it), `remove-worker` (the
worker node is lost, SIGKILL), `quit`. The head node carries the label HEAD_LABEL, for the
placement by node labels.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import psutil
import ray
from ray._private import ray_constants
from ray._private import state as ray_state
from ray._private.node import Node
from ray.cluster_utils import Cluster

from actors.remote import HUB_NAME

NODE_ARGS: dict[str, Any] = {
    "num_cpus": 1,
    "object_store_memory": 80 * 1024 * 1024,
}
HEAD_LABEL = ("boxoffice.io/categories", "here")


def category_actors(node: Node | None) -> int:
    """Category actor processes under the node's raylet (its worker processes)."""
    if node is None:
        return 0
    raylet = node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process
    count = 0
    for child in psutil.Process(raylet.pid).children(recursive=True):
        try:
            count += "CategoryActor" in " ".join(child.cmdline())
        except psutil.NoSuchProcess:
            continue
    return count


def where(names: list[str], cluster: Cluster, worker: Node | None) -> dict[str, str | None]:
    """The node ("head", "worker") each named actor of this namespace lives on; None when no
    live actor has the name."""
    assert cluster.head_node is not None
    nodes = {cluster.head_node.node_id: "head"}
    if worker is not None:
        nodes[worker.node_id] = "worker"
    found: dict[str, str | None] = dict.fromkeys(names)
    for info in ray_state.actors().values():
        if info.get("Name") in found and info.get("State") == "ALIVE":
            found[info["Name"]] = nodes.get(info["Address"]["NodeID"], "elsewhere")
    return found


def main(namespace: str) -> None:
    # Ray's default node-failure detection (about 15 s) is kept on purpose: the tests show
    # that callers are answered within ACTOR_CALL_TIMEOUT_SECONDS, not when Ray notices.
    cluster = Cluster(
        initialize_head=True,
        head_node_args={**NODE_ARGS, "include_dashboard": False, "labels": dict([HEAD_LABEL])},
    )
    worker: Node | None = cluster.add_node(**NODE_ARGS)
    cluster.wait_for_nodes()
    # Not Cluster.connect: workers' logs must not reach this process's stdout (the answers).
    ray.init(address=cluster.address, namespace=namespace, log_to_driver=False)
    print(json.dumps({"address": cluster.address}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        answer: dict[str, Any] = {"command": command}
        if command == "actors":
            answer |= {
                "head": category_actors(cluster.head_node),
                "worker": category_actors(worker),
            }
        elif command.startswith("where "):
            answer |= {"nodes": where(command.removeprefix("where ").split(","), cluster, worker)}
        elif command == "kill-hub":
            ray.kill(ray.get_actor(HUB_NAME, namespace=namespace), no_restart=False)
        elif command == "remove-worker" and worker is not None:
            cluster.remove_node(worker, allow_graceful=False)
            worker = None
        elif command == "quit":
            break
        else:
            answer |= {"error": "unknown command"}
        print(json.dumps(answer), flush=True)
    ray.shutdown()
    cluster.shutdown()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    main(sys.argv[1])
