"""Create each service's role and schema, then run its migrations as that role; bring the broker's
queues to the declarations the services use.

Usage: python -m scripts.migrate   (reads DATABASE_URL, AMQP_URL and the per-service settings)
"""

from __future__ import annotations

import logging
import sys
from functools import partial
from pathlib import Path

import pika
import pika.exceptions
import sqlalchemy
import sqlalchemy.exc
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from confbook_common.db.migrations import upgrade
from confbook_common.messaging.topology import DEAD_LETTER_QUEUE
from confbook_common.settings import SERVICES, ConfigError, Env
from scripts.broker_accounts import event_publishers, provision_broker_accounts, queue_mover_account
from scripts.queue_upgrade import redeclare_changed_queues
from services.waitlist.adapters import topology as waitlist_topology

log = logging.getLogger("migrate")

SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"


def provision(admin: Engine, schema: str, role: str, password: str) -> None:
    """A login role with no other rights, owning the schema; idempotent."""
    quote = admin.dialect.identifier_preparer.quote
    role_name, schema_name = quote(role), quote(schema)
    with admin.begin() as db:
        exists = db.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": role}).first()
        # psycopg2 binds parameters on the client, so even DDL can take the password safely.
        verb = "ALTER" if exists else "CREATE"
        db.exec_driver_sql(f"{verb} ROLE {role_name} LOGIN PASSWORD %(password)s", {"password": password})
        db.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {schema_name} AUTHORIZATION {role_name}")
        db.exec_driver_sql(f"REVOKE ALL ON SCHEMA {schema_name} FROM PUBLIC")
        db.exec_driver_sql(f"ALTER ROLE {role_name} SET search_path = {schema_name}")
        database = quote(make_url(str(admin.url)).database or "")
        db.exec_driver_sql(f"GRANT CONNECT ON DATABASE {database} TO {role_name}")


def migrate_all(env: Env | None = None) -> None:
    env = env or Env()
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per schema instead of one per step
    admin = sqlalchemy.create_engine(env.admin_database_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.begin() as db:
            # The booking schema's exclusion constraint (no overlapping confirmed bookings) needs it.
            db.execute(text("CREATE EXTENSION IF NOT EXISTS btree_gist"))
        for service in SERVICES:
            url = env.service_database_url(service)
            login = make_url(url)
            provision(admin, schema=service, role=login.username or "", password=login.password or "")
            upgrade(SERVICES_DIR / service / "migrations", url, schema=service)
            log.info("%s schema is up to date", service)
    finally:
        admin.dispose()


def migrate_broker(env: Env | None = None) -> None:
    """Every service's broker user and permissions; queues an earlier version declared otherwise
    (classic) become the quorum queues declared now."""
    env = env or Env()
    provision_broker_accounts(env)
    # pika tells of every channel the broker closes; here a refusal is how a changed queue is found.
    logging.getLogger("pika").setLevel(logging.ERROR)
    window = env.confirmation_window_seconds()
    queues = [*waitlist_topology.queue_names(window), DEAD_LETTER_QUEUE]
    with queue_mover_account(env) as mover_url:
        redeclare_changed_queues(
            mover_url, queues, partial(waitlist_topology.declare, window_seconds=window), event_publishers(env)
        )
    log.info("broker queues are up to date")


def empty_queues(amqp_url: str, window_seconds: int) -> int:
    """Purge every message from the stack's queues (those not declared yet have none); returns how many.

    Purged rather than deleted: a quorum queue declared again moments after its deletion can be left
    without its process (RabbitMQ 3.10).
    """
    purged = 0
    # pika tells of every channel the broker closes; here a refusal is how a queue never declared is found.
    logging.getLogger("pika").setLevel(logging.ERROR)
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        for queue in [*waitlist_topology.queue_names(window_seconds), DEAD_LETTER_QUEUE]:
            channel = connection.channel()
            try:
                purged += channel.queue_purge(queue).method.message_count
            except pika.exceptions.ChannelClosedByBroker as error:
                if error.reply_code != 404:  # NOT_FOUND: never declared, so empty
                    raise
                continue
            channel.close()
    finally:
        connection.close()
    return purged


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        migrate_all()
        migrate_broker()
    except ConfigError as error:  # a setting to fix, said in one line
        sys.exit(f"migrate: {error}")
    except sqlalchemy.exc.OperationalError as error:
        sys.exit(f"migrate: cannot reach PostgreSQL: {str(error.orig).strip()}")


if __name__ == "__main__":
    main()
