"""What the category actors and their client need to know, as one picklable value.

Built from `gateway.config.Settings` at start and shipped to every actor at creation.
"""

from __future__ import annotations

from dataclasses import dataclass

# Deadline of one actor call, its retries included: past it the caller answers 503 with
# Retry-After instead of waiting for Ray to declare a lost node dead (~16 s by default). The
# start deadline is for an actor this process has not heard from yet (a process to start, a
# rebuild from PostgreSQL), or whose actor was replaced. Defaults of ACTOR_CALL_TIMEOUT_SECONDS
# and ACTOR_START_TIMEOUT_SECONDS, for category and queue actors alike.
CALL_TIMEOUT_SECONDS = 5.0
START_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class ActorConfig:
    database_url: str
    namespace: str = "boxoffice"
    lock_ttl_seconds: float = 300.0
    snapshot_interval_seconds: float = 1.0
    actor_idle_seconds: float = 60.0
    publish_interval_seconds: float = 0.02
    # Off only to measure what group commit buys (benchmarks); on in every deployment.
    group_commit: bool = True
    # Off only to measure what the hold journal costs (benchmarks/journal_cost.py): without it
    # a kill -9 undoes answered holds and releases (invariant 4).
    hold_journal: bool = True
    # How often a live actor re-reads whether its event and category are still on sale.
    catalogue_refresh_seconds: float = 2.0
    # PostgreSQL connections of one live category actor, a hard cap (no overflow): the
    # budget grows with live categories, so one by default (its journal write, order commit
    # and snapshot take turns). See the formula in docs/deployment.md.
    actor_db_connections: int = 1
    call_retries: int = 30
    call_timeout_seconds: float = CALL_TIMEOUT_SECONDS
    start_timeout_seconds: float = START_TIMEOUT_SECONDS
    # Where category actors go: "spread" (one node after another), "pack" (Ray's default) or
    # "node-label" (spread over the nodes whose labels match `node_labels`).
    placement: str = "spread"
    # Idle worker processes of this job kept ready on each node for activations (actors/spares.py).
    spare_workers: int = 4
    node_labels: tuple[tuple[str, str], ...] = ()
    # Fair sales (issue 12): how long a waiting-list offer is held for its buyer, and how
    # long a buyer whose hold expired waits before holding in that category again (0: off).
    waitlist_offer_seconds: float = 600.0
    rehold_cooldown_seconds: float = 0.0
