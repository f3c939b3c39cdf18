"""PostgreSQL access: engines, units of work, and retries of transactions that lost a race."""

from confbook_common.db.engine import create_engine, is_transient_db_error, listening_connection, violated_constraint
from confbook_common.db.unit_of_work import SqlUnitOfWork, retries_on_conflict, retry_on_conflict

__all__ = [
    "SqlUnitOfWork",
    "create_engine",
    "is_transient_db_error",
    "listening_connection",
    "retries_on_conflict",
    "retry_on_conflict",
    "violated_constraint",
]
