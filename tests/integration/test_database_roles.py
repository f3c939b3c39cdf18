"""Least privilege in the database (docs/adr/0022): the stack's admin role creates roles and databases
but is no superuser; each schema belongs to an owner role that only the migrations act as; each service
logs in as a role that may read and write its own rows and nothing else."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg2
import psycopg2.errors
import pytest
import sqlalchemy
from sqlalchemy.engine import make_url

from confbook_common.db.migrations import upgrade
from confbook_common.settings import SERVICES
from scripts import infra
from scripts.migrate import SERVICES_DIR, SchemaRoles, migrate_schema
from scripts.sandbox import Infrastructure, recreate_database

MIGRATIONS = SERVICES_DIR / "waitlist" / "migrations"
# What a compromised service would try first; each must be refused.
FORBIDDEN_TO_A_SERVICE = [
    "CREATE TABLE {schema}.planted (id int)",
    "CREATE TEMP TABLE planted (id int)",
    "CREATE SCHEMA planted",
    "CREATE TABLE public.planted (id int)",
    "DROP SCHEMA {schema} CASCADE",
    "DROP TABLE {schema}.{table}",
    "ALTER TABLE {schema}.{table} ADD COLUMN planted int",
    "TRUNCATE {schema}.{table}",
    "CREATE FUNCTION {schema}.planted() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "UPDATE {schema}.alembic_version SET version_num = version_num",
    "SET ROLE {owner}",
    "COPY (SELECT 1) TO PROGRAM 'true'",
    "SELECT pg_read_file('/etc/passwd')",
    "CREATE ROLE planted",
    "CREATE DATABASE planted",
]


def connect(url: str) -> psycopg2.extensions.connection:
    return infra.connect_postgres(make_url(url))


def refused(connection: psycopg2.extensions.connection, statement: str) -> bool:
    """Whether `statement` fails for want of a right (each try in a transaction of its own, rolled back;
    CREATE DATABASE, which cannot run in one, on its own)."""
    connection.rollback()
    connection.autocommit = statement.startswith("CREATE DATABASE")
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement)
    except (psycopg2.errors.InsufficientPrivilege, psycopg2.errors.UndefinedObject):
        return True
    finally:
        connection.rollback()
        connection.autocommit = False
    return False


@pytest.fixture(params=SERVICES)
def service(request: pytest.FixtureRequest, infrastructure: Infrastructure) -> Iterator[tuple[SchemaRoles, str]]:
    url = infrastructure.service_database_url(request.param)
    yield SchemaRoles.of(request.param, url), url


def a_table_of(connection: psycopg2.extensions.connection, schema: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename <> 'alembic_version'", (schema,)
        )
        return str(cursor.fetchone()[0])


def test_a_service_role_may_not_change_its_schema_nor_step_outside_it(service):
    roles, url = service
    connection = connect(url)
    try:
        table = a_table_of(connection, roles.schema)
        for statement in FORBIDDEN_TO_A_SERVICE:
            statement = statement.format(schema=roles.schema, table=table, owner=roles.owner)
            assert refused(connection, statement), f"{roles.runtime} may {statement}"
        for other in SERVICES:
            if other != roles.schema:
                assert refused(
                    connection, f"SELECT 1 FROM {other}.{a_table_of(connection, other) if False else 'outbox'}"
                )
    finally:
        connection.close()


def test_a_service_role_reads_and_writes_its_own_rows(service):
    roles, url = service
    connection = connect(url)
    try:
        with connection.cursor() as cursor:
            # Every service has an outbox: a row in, read back, changed and removed, then all rolled back.
            cursor.execute(
                "INSERT INTO outbox (message_id, exchange, routing_key, message_type, payload)"
                " VALUES ('role-test', '', 'x', 'x', '') RETURNING id"
            )
            row_id = cursor.fetchone()[0]
            cursor.execute("UPDATE outbox SET attempts = 1 WHERE id = %s", (row_id,))
            cursor.execute("SELECT attempts FROM outbox WHERE id = %s FOR UPDATE", (row_id,))
            assert cursor.fetchone() == (1,)
            cursor.execute("DELETE FROM outbox WHERE id = %s", (row_id,))
            cursor.execute("SELECT version_num FROM alembic_version")
            assert cursor.fetchone()
        connection.rollback()
    finally:
        connection.close()


def test_everything_in_a_schema_belongs_to_its_owner_who_cannot_log_in(infrastructure, service):
    roles, _ = service
    admin = connect(infrastructure.database_url)
    try:
        with admin.cursor() as cursor:
            cursor.execute(
                "SELECT c.relname, c.relowner::regrole::text FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s"
                " UNION ALL SELECT p.proname, p.proowner::regrole::text FROM pg_proc p"
                " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %s"
                " UNION ALL SELECT nspname, nspowner::regrole::text FROM pg_namespace WHERE nspname = %s",
                (roles.schema, roles.schema, roles.schema),
            )
            owners = {name: owner for name, owner in cursor.fetchall()}
            cursor.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (roles.owner,))
            can_log_in = cursor.fetchone()[0]
    finally:
        admin.close()
    assert len(owners) > 5
    assert {owner for owner in owners.values()} == {roles.owner}, owners
    assert not can_log_in


def test_the_admin_role_creates_roles_and_databases_but_is_no_superuser(infrastructure):
    admin = connect(infrastructure.database_url)
    try:
        with admin.cursor() as cursor:
            cursor.execute("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user")
            assert cursor.fetchone() == (False, True, True)
        admin.rollback()
        # A superuser could run shell commands as the server's OS user, or read its files.
        assert refused(admin, "COPY (SELECT 1) TO PROGRAM 'true'")
        assert refused(admin, "SELECT pg_read_file('/etc/passwd')")
        assert refused(admin, "SELECT pg_ls_dir('.')")
    finally:
        admin.close()


def test_a_schema_made_before_owner_roles_passes_to_its_owner(infrastructure):
    """Before the owner roles, the service's login role owned its schema and ran the migrations itself."""
    database = "confbook_roles_upgrade_test"
    admin_url = make_url(infrastructure.database_url)
    recreate_database(admin_url.set(database=database).render_as_string(hide_password=False))
    service_url = make_url(infrastructure.service_database_url("waitlist")).set(database=database)
    roles = SchemaRoles.of("waitlist", service_url.render_as_string(hide_password=False))
    admin = sqlalchemy.create_engine(admin_url.set(database=database), isolation_level="AUTOCOMMIT")
    try:
        with admin.begin() as db:
            db.exec_driver_sql(f"GRANT {roles.runtime} TO CURRENT_USER")
            db.exec_driver_sql(f"CREATE SCHEMA waitlist AUTHORIZATION {roles.runtime}")
            db.exec_driver_sql(f"REVOKE {roles.runtime} FROM CURRENT_USER")
        # The old way: the login role runs the first migration and owns what it makes.
        upgrade(MIGRATIONS, service_url.render_as_string(hide_password=False), "waitlist", "0001")

        migrate_schema(admin, MIGRATIONS, roles)

        with admin.begin() as db:
            owners = db.exec_driver_sql(
                "SELECT DISTINCT c.relowner::regrole::text FROM pg_class c JOIN pg_namespace n"
                " ON n.oid = c.relnamespace WHERE n.nspname = 'waitlist'"
                " UNION SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'waitlist'"
            ).scalars()
            assert set(owners) == {roles.owner}
            assert db.exec_driver_sql("SELECT version_num FROM waitlist.alembic_version").scalar_one() != "0001"
    finally:
        admin.dispose()
    connection = infra.connect_postgres(service_url)
    try:
        assert refused(connection, "CREATE TABLE waitlist.planted (id int)")
        assert not refused(connection, "SELECT count(*) FROM waitlist.outbox")
    finally:
        connection.close()
