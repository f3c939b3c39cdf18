"""Create each service's roles and schema, then run its migrations as the schema's owner; bring the broker's
queues to the declarations the services use.

Usage: python -m scripts.migrate   (reads DATABASE_URL, AMQP_URL and the per-service settings)
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pika
import pika.exceptions
import sqlalchemy
import sqlalchemy.exc
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine, make_url

from confbook_common.db.migrations import upgrade
from confbook_common.messaging.topology import DEAD_LETTER_QUEUE
from confbook_common.settings import SERVICES, ConfigError, Env
from scripts.broker_accounts import event_publishers, provision_broker_accounts, queue_mover_account
from scripts.queue_upgrade import redeclare_changed_queues
from services.waitlist.adapters import topology as waitlist_topology

log = logging.getLogger("migrate")

SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"


@dataclass(frozen=True)
class SchemaRoles:
    """Who may do what in one service's schema (docs/adr/0022).

    `owner` (no login) owns the schema and everything in it: the migrations run as it. `runtime` is the
    role the service logs in as: it may read and write the schema's rows, use its sequences and call its
    functions, and nothing else (no DDL, no temporary tables, no other schema).
    """

    schema: str
    runtime: str
    password: str

    @property
    def owner(self) -> str:
        return f"{self.runtime}_owner"

    @classmethod
    def of(cls, service: str, service_url: str) -> SchemaRoles:
        login = make_url(service_url)
        return cls(schema=service, runtime=login.username or "", password=login.password or "")


def migrate_schema(admin: Engine, migrations_dir: Path, roles: SchemaRoles, revision: str = "head") -> None:
    """Roles and schema in place, then `migrations_dir` up to `revision` as the owner, then the runtime's grants."""
    provision(admin, roles)
    upgrade(migrations_dir, admin.url.render_as_string(hide_password=False), roles.schema, revision, role=roles.owner)
    grant_runtime(admin, roles)


def provision(admin: Engine, roles: SchemaRoles) -> None:
    """The owner and runtime roles and the schema, as SchemaRoles says; idempotent."""
    quote = admin.dialect.identifier_preparer.quote
    owner, runtime, schema = quote(roles.owner), quote(roles.runtime), quote(roles.schema)
    database = quote(make_url(str(admin.url)).database or "")
    with admin.begin() as db:
        if not _role_exists(db, roles.owner):
            db.exec_driver_sql(f"CREATE ROLE {owner} NOLOGIN")
        # psycopg2 binds parameters on the client, so even DDL can take the password safely.
        verb = "ALTER" if _role_exists(db, roles.runtime) else "CREATE"
        db.exec_driver_sql(
            f"{verb} ROLE {runtime} LOGIN NOCREATEDB NOCREATEROLE PASSWORD %(password)s", {"password": roles.password}
        )
        # The admin acts as the owner to create the schema and run the migrations.
        db.exec_driver_sql(f"GRANT {owner} TO CURRENT_USER")
        db.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {owner}")
        _take_from_runtime(db, roles, owner, runtime, schema)
        db.exec_driver_sql(f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC")
        db.exec_driver_sql(f"ALTER ROLE {runtime} SET search_path = {schema}")
        # Only the roles granted may connect, and nobody may create temporary tables.
        db.exec_driver_sql(f"REVOKE CONNECT, TEMPORARY ON DATABASE {database} FROM PUBLIC")
        db.exec_driver_sql(f"GRANT CONNECT ON DATABASE {database} TO {runtime}")


def _take_from_runtime(db: Connection, roles: SchemaRoles, owner: str, runtime: str, schema: str) -> None:
    """A schema made before the owner roles belonged to the runtime role: it and all in it go to the owner."""
    current = db.execute(
        text("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = :schema"), {"schema": roles.schema}
    ).scalar_one()
    if current.strip('"') != roles.runtime:
        return
    db.exec_driver_sql(f"GRANT {runtime} TO CURRENT_USER")  # REASSIGN OWNED acts for both roles
    db.exec_driver_sql(f"REASSIGN OWNED BY {runtime} TO {owner}")
    db.exec_driver_sql(f"REVOKE {runtime} FROM CURRENT_USER")
    log.info("%s schema now belongs to %s", roles.schema, roles.owner)


def grant_runtime(admin: Engine, roles: SchemaRoles) -> None:
    """The runtime role's rights on what the migrations made (and, by default, on what the owner makes later)."""
    quote = admin.dialect.identifier_preparer.quote
    owner, runtime, schema = quote(roles.owner), quote(roles.runtime), quote(roles.schema)
    rights = {
        "TABLES": "SELECT, INSERT, UPDATE, DELETE",
        "SEQUENCES": "USAGE, SELECT, UPDATE",
        "FUNCTIONS": "EXECUTE",
    }
    with admin.begin() as db:
        db.exec_driver_sql(f"SET ROLE {owner}")
        db.exec_driver_sql(f"GRANT USAGE ON SCHEMA {schema} TO {runtime}")
        for kind, granted in rights.items():
            db.exec_driver_sql(f"GRANT {granted} ON ALL {kind} IN SCHEMA {schema} TO {runtime}")
            db.exec_driver_sql(
                f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} GRANT {granted} ON {kind} TO {runtime}"
            )
        # Which migrations ran is the owner's to record.
        db.exec_driver_sql(f"REVOKE INSERT, UPDATE, DELETE ON {schema}.alembic_version FROM {runtime}")
        db.exec_driver_sql("RESET ROLE")


def _role_exists(db: Connection, role: str) -> bool:
    return db.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": role}).first() is not None


def migrate_all(env: Env | None = None) -> None:
    env = env or Env()
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per schema instead of one per step
    admin = sqlalchemy.create_engine(env.admin_database_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.begin() as db:
            # The booking schema's exclusion constraint (no overlapping confirmed bookings) needs it; trusted,
            # so the database's owner may create it.
            db.execute(text("CREATE EXTENSION IF NOT EXISTS btree_gist"))
        for service in SERVICES:
            roles = SchemaRoles.of(service, env.service_database_url(service))
            migrate_schema(admin, SERVICES_DIR / service / "migrations", roles)
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
