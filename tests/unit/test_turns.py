"""Turns: a few holders per key at a time, the others served first come, first served."""

from __future__ import annotations

import threading
import time

import pytest

from services.booking.entrypoints.turns import NoTurnInTime, Turns
from tests.waiting import eventually


def _hold(turns: Turns, key: str, release: threading.Event, log: list[str], name: str) -> threading.Thread:
    def run() -> None:
        with turns.turn(key):
            log.append(name)
            release.wait(5)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _wait_for(turns: Turns, count: int) -> None:
    eventually(lambda: turns.callers() == count)


def test_callers_of_one_key_take_their_turns_in_the_order_they_came():
    turns = Turns(at_once=1)
    release, log = threading.Event(), list[str]()
    callers = [_hold(turns, "pycon", release, log, "first")]
    eventually(lambda: log == ["first"])
    for name in ("second", "third", "fourth"):
        callers.append(_hold(turns, "pycon", release, log, name))
        _wait_for(turns, len(callers))  # in line, in this order
    release.set()
    for thread in callers:
        thread.join(5)
    assert log == ["first", "second", "third", "fourth"]
    assert turns.callers() == 0  # an emptied line is forgotten


def test_at_most_at_once_callers_hold_a_key_and_the_next_gets_in_as_one_leaves():
    turns = Turns(at_once=2)
    first, second, log = threading.Event(), threading.Event(), list[str]()
    holders = [_hold(turns, "pycon", first, log, "first"), _hold(turns, "pycon", second, log, "second")]
    eventually(lambda: len(log) == 2)
    third = _hold(turns, "pycon", second, log, "third")
    _wait_for(turns, 3)
    time.sleep(0.05)
    assert len(log) == 2  # the third waits
    first.set()
    eventually(lambda: len(log) == 3)
    second.set()
    for thread in [*holders, third]:
        thread.join(5)
    assert turns.callers() == 0


def test_other_keys_do_not_wait():
    turns = Turns(at_once=1)
    release, log = threading.Event(), list[str]()
    holder = _hold(turns, "pycon", release, log, "pycon")
    eventually(lambda: log == ["pycon"])
    with turns.turn("europython", timeout=0.5):
        pass
    release.set()
    holder.join(5)


def test_a_caller_whose_time_runs_out_leaves_the_line_and_the_next_gets_its_place():
    turns = Turns(at_once=1)
    release, log = threading.Event(), list[str]()
    holder = _hold(turns, "pycon", release, log, "holder")
    eventually(lambda: log == ["holder"])
    with pytest.raises(NoTurnInTime), turns.turn("pycon", timeout=0.05):
        pytest.fail("got a turn that was held")
    assert turns.callers() == 1
    after = _hold(turns, "pycon", release, log, "after")
    release.set()
    for thread in (holder, after):
        thread.join(5)
    assert log == ["holder", "after"]
    assert turns.callers() == 0


def test_no_deadline_means_waiting_as_long_as_it_takes():
    turns = Turns(at_once=1)
    with turns.turn("pycon", timeout=threading.TIMEOUT_MAX * 2):  # what a call without a deadline may report
        assert turns.callers() == 1
