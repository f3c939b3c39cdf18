"""Which backup the schedule takes when, and which moments a restore accepts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from confbook_common.settings import ConfigError, Env
from scripts.backup import Backup, BackupError, BackupSettings, due, parse_target

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
SETTINGS = BackupSettings.from_env(Env({"BACKUP_FULL_EVERY_DAYS": "7", "BACKUP_DIFF_EVERY_HOURS": "6"}))


def taken(kind, hours_ago):
    finished = NOW - timedelta(hours=hours_ago)
    return Backup(label=f"{kind}-{hours_ago}", type=kind, started=finished - timedelta(minutes=1), finished=finished)


def test_the_first_backup_is_a_full_one():
    assert due([], SETTINGS, NOW) == "full"


def test_a_differential_follows_once_the_last_backup_is_older_than_its_interval():
    assert due([taken("full", 5)], SETTINGS, NOW) is None
    assert due([taken("full", 6)], SETTINGS, NOW) == "diff"
    assert due([taken("full", 30), taken("diff", 2)], SETTINGS, NOW) is None


def test_a_full_backup_is_due_once_the_last_full_is_older_than_its_interval_whatever_came_since():
    assert due([taken("full", 7 * 24), taken("diff", 1)], SETTINGS, NOW) == "full"
    assert due([taken("full", 7 * 24 - 1), taken("diff", 1)], SETTINGS, NOW) is None


def test_settings_have_defaults_and_refuse_nonsense():
    defaults = BackupSettings.from_env(Env({}))
    assert (defaults.full_every, defaults.diff_every, defaults.retention_full) == (
        timedelta(days=7),
        timedelta(hours=6),
        2,
    )
    with pytest.raises(ConfigError, match="BACKUP_DIFF_EVERY_HOURS"):
        BackupSettings.from_env(Env({"BACKUP_DIFF_EVERY_HOURS": "0"}))


def test_a_restore_target_is_latest_or_a_past_moment_in_utc_unless_an_offset_is_given():
    assert parse_target("latest") is None
    assert parse_target("2026-01-02 03:04:05") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_target("2026-01-02T04:04:05+01:00") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    with pytest.raises(BackupError, match="not a time"):
        parse_target("yesterday")
    with pytest.raises(BackupError, match="has not happened yet"):
        parse_target((datetime.now(UTC) + timedelta(hours=1)).isoformat())
