from confbook_common.db.migrations import run_migrations

run_migrations()
