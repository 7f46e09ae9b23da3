"""Bringing the whole system up and down in order: database, schema, Ray, seat client, services.

`System.start` returns the `Runtime` every route and socket handler works with; `stop`
undoes exactly what `start` did, in reverse, and only what this process started.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from actors import spares
from actors.client import SeatClient
from actors.config import ActorConfig
from actors.queue_actor import QueueConfig
from actors.queue_client import QueueClient
from actors.remote import start_ray, stop_ray
from gateway.config import Settings
from gateway.leftovers import forget_run, reap_crashed_run, record_run
from gateway.limits import Limits
from persistence import snapshots
from persistence.database import create_engine, migrate
from persistence.embedded import EmbeddedPostgres
from sales.admission import AdmissionPasses, WaitingRooms
from sales.directory import Directory
from sales.fulfilment import OrderProcessor
from sales.identity import Authenticator, PasswordHasher, TokenService
from sales.service import Sales

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Runtime:
    """The running system as one gateway process serves it: what every adapter is given."""

    settings: Settings
    db: AsyncEngine
    seats: SeatClient
    sales: Sales
    auth: Authenticator
    tokens: TokenService
    passwords: PasswordHasher
    orders: OrderProcessor
    directory: Directory
    database_url: str
    limits: Limits
    rooms: WaitingRooms


def actor_config(settings: Settings, database_url: str) -> ActorConfig:
    return ActorConfig(
        database_url=database_url,
        namespace=settings.ray_namespace,
        lock_ttl_seconds=settings.lock_ttl_seconds,
        snapshot_interval_seconds=settings.snapshot_interval_seconds,
        actor_idle_seconds=settings.actor_idle_seconds,
        publish_interval_seconds=settings.publish_interval_seconds,
        group_commit=settings.group_commit,
        waitlist_offer_seconds=settings.waitlist_offer_seconds,
        rehold_cooldown_seconds=settings.rehold_cooldown_seconds,
        actor_db_connections=settings.actor_db_connections,
        call_timeout_seconds=settings.actor_call_timeout_seconds,
        start_timeout_seconds=settings.actor_start_timeout_seconds,
        placement=settings.actor_placement,
        spare_workers=settings.actor_spare_workers,
        node_labels=settings.actor_node_labels,
    )


def queue_config(settings: Settings, database_url: str) -> QueueConfig:
    return QueueConfig(
        database_url=database_url,
        namespace=settings.ray_namespace,
        pass_seconds=settings.admission_ttl_seconds,
        tick_seconds=settings.queue_tick_seconds,
        idle_seconds=settings.actor_idle_seconds,
        call_timeout_seconds=settings.actor_call_timeout_seconds,
        start_timeout_seconds=settings.actor_start_timeout_seconds,
    )


class System:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runtime: Runtime | None = None
        self.postgres: EmbeddedPostgres | None = None
        self._stack = AsyncExitStack()

    async def start(self) -> Runtime:
        settings = self.settings
        stack = self._stack
        try:
            # A run killed on this DATA_DIR may have left its Ray and PostgreSQL running.
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(reap_crashed_run, settings.data_dir)
            database_url = settings.database_url
            if not database_url:
                self.postgres = EmbeddedPostgres(settings.data_dir)
                database_url = await asyncio.to_thread(self.postgres.start)
                stack.callback(self.postgres.stop)
            await migrate(database_url)
            db = create_engine(database_url, pool_size=settings.db_pool_size)
            stack.push_async_callback(db.dispose)

            owns_ray = await asyncio.to_thread(
                start_ray,
                settings.ray_address,
                settings.ray_namespace,
                settings.ray_object_store_bytes,
            )
            if owns_ray:
                stack.callback(stop_ray, owns_ray)
            spares.keep_node_stocked(settings.actor_spare_workers)
            seats = await SeatClient.start(actor_config(settings, database_url), db)
            stack.push_async_callback(seats.close)

            directory = Directory(db, seats)
            stack.callback(directory.close)

            queues = QueueClient(queue_config(settings, database_url))
            await queues.start()
            stack.push_async_callback(queues.close)

            orders = OrderProcessor(db, seats)
            await orders.start()
            stack.push_async_callback(orders.stop)

            # Holds live only in actors: bring back every category a snapshot says had some.
            async with db.connect() as conn:
                await seats.activate(await snapshots.categories_with_holds(conn))
            postgres_pid = self.postgres.pid if self.postgres is not None else None
            await asyncio.to_thread(record_run, settings.data_dir, postgres_pid)
            stack.callback(forget_run, settings.data_dir)
        except BaseException:
            await stack.aclose()
            raise
        tokens = TokenService(settings.resolved_jwt_secret(), settings.token_lifetime)
        passwords = PasswordHasher(
            settings.bcrypt_rounds,
            workers=settings.password_hash_workers,
            queue=settings.password_hash_queue,
        )
        stack.callback(passwords.close)
        rooms = WaitingRooms(directory, queues, AdmissionPasses(settings.resolved_jwt_secret()))
        self.runtime = Runtime(
            settings=settings,
            db=db,
            seats=seats,
            sales=Sales(
                db,
                seats,
                directory,
                orders,
                max_tickets_per_request=settings.max_tickets_per_request,
                max_live_holds_per_user=settings.max_live_holds_per_user,
                waiting_rooms=rooms,
            ),
            auth=Authenticator(tokens, directory),
            tokens=tokens,
            passwords=passwords,
            orders=orders,
            directory=directory,
            database_url=database_url,
            limits=Limits.from_settings(settings),
            rooms=rooms,
        )
        return self.runtime

    async def stop(self) -> None:
        self.runtime = None
        await self._stack.aclose()
