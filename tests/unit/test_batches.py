"""Batches: the calls for one key that come while its batch runs go together in the next, in the order they came."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from services.booking.entrypoints.batches import Batches, BatchFailed, NoTurnInTime
from tests.waiting import eventually


class Recorder:
    """A batch runner that records each batch and holds it until released; the result of an item is its upper case."""

    def __init__(self, *, fail_with: Exception | None = None) -> None:
        self.batches: list[tuple[str, list[str]]] = []
        self.release = threading.Event()
        self._fail_with = fail_with

    def __call__(self, key: str, items: list[str]) -> list[str]:
        self.batches.append((key, items))
        self.release.wait(5)
        if self._fail_with is not None:
            raise self._fail_with
        return [item.upper() for item in items]


def _submit(batches: Batches[str, str, str], key: str, item: str, answers: dict[str, object]) -> threading.Thread:
    def run() -> None:
        try:
            answers[item] = batches.submit(key, item, timeout=5)
        except (BatchFailed, NoTurnInTime, RuntimeError) as error:
            answers[item] = error

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _in_line(batches: Batches[str, str, str], count: int) -> None:
    eventually(lambda: batches.callers() == count)


def _join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(5)
        assert not thread.is_alive()


def _queue_behind_first(
    batches: Batches[str, str, str], runner: Recorder, items: list[str], answers: dict[str, object]
) -> list[threading.Thread]:
    """Start the first item's batch and hold it, then line up the others behind it in order."""
    threads = [_submit(batches, "pycon", items[0], answers)]
    eventually(lambda: len(runner.batches) == 1)
    for item in items[1:]:
        threads.append(_submit(batches, "pycon", item, answers))
        _in_line(batches, len(threads))  # in line, in this order
    return threads


def test_the_calls_that_come_while_a_batch_runs_go_together_in_the_next_in_the_order_they_came():
    runner = Recorder()
    batches: Batches[str, str, str] = Batches(runner, most=10)
    answers: dict[str, object] = {}
    threads = _queue_behind_first(batches, runner, ["ann", "bob", "cid", "dee"], answers)
    runner.release.set()
    _join(threads)
    assert runner.batches == [("pycon", ["ann"]), ("pycon", ["bob", "cid", "dee"])]
    assert answers == {"ann": "ANN", "bob": "BOB", "cid": "CID", "dee": "DEE"}  # each caller its own result
    assert batches.callers() == 0  # an emptied line is forgotten


def test_a_batch_takes_at_most_its_limit_and_the_rest_go_in_the_following_ones():
    runner = Recorder()
    batches: Batches[str, str, str] = Batches(runner, most=2)
    answers: dict[str, object] = {}
    threads = _queue_behind_first(batches, runner, ["ann", "bob", "cid", "dee", "eve"], answers)
    runner.release.set()
    _join(threads)
    assert [items for _, items in runner.batches] == [["ann"], ["bob", "cid"], ["dee", "eve"]]
    assert answers["eve"] == "EVE"


def test_another_key_does_not_wait_for_a_batch_under_way():
    runner = Recorder()
    batches: Batches[str, str, str] = Batches(runner, most=10)
    answers: dict[str, object] = {}
    held = _submit(batches, "pycon", "ann", answers)
    eventually(lambda: len(runner.batches) == 1)
    other = _submit(batches, "europython", "bob", answers)
    eventually(lambda: len(runner.batches) == 2)  # under way beside the held one
    assert runner.batches[1] == ("europython", ["bob"])
    runner.release.set()
    _join([held, other])
    assert answers == {"ann": "ANN", "bob": "BOB"}


def test_a_call_whose_time_runs_out_in_line_leaves_it_and_the_calls_behind_it_are_still_served():
    runner = Recorder()
    batches: Batches[str, str, str] = Batches(runner, most=10)
    answers: dict[str, object] = {}
    threads = _queue_behind_first(batches, runner, ["ann"], answers)
    with pytest.raises(NoTurnInTime):
        batches.submit("pycon", "bob", timeout=0.05)
    assert batches.callers() == 1  # only the held batch's call is left
    threads.append(_submit(batches, "pycon", "cid", answers))
    _in_line(batches, 2)
    runner.release.set()
    _join(threads)
    assert [items for _, items in runner.batches] == [["ann"], ["cid"]]
    assert batches.callers() == 0


def test_every_caller_of_a_failed_batch_learns_why_and_the_line_goes_on():
    error = RuntimeError("deadlock detected")
    runner = Recorder(fail_with=error)
    batches: Batches[str, str, str] = Batches(runner, most=10)
    answers: dict[str, object] = {}
    threads = _queue_behind_first(batches, runner, ["ann", "bob", "cid"], answers)
    runner.release.set()
    _join(threads)
    assert [items for _, items in runner.batches] == [["ann"], ["bob", "cid"]]
    assert answers["ann"] is error  # alone in its batch: the error is its own
    for item in ("bob", "cid"):  # shared: the error may be the other's
        failure = answers[item]
        assert isinstance(failure, BatchFailed)
        assert failure.__cause__ is error
    assert batches.callers() == 0


def test_a_runner_that_answers_for_fewer_items_than_it_was_given_fails_the_batch():
    runner: Callable[[str, list[str]], list[str]] = lambda key, items: items[1:]  # noqa: E731
    batches: Batches[str, str, str] = Batches(runner, most=10)
    with pytest.raises(AssertionError, match="0 results for 1 items"):
        batches.submit("pycon", "ann")


def test_a_call_without_a_deadline_waits_as_long_as_it_takes():
    batches: Batches[str, str, str] = Batches(lambda key, items: items, most=10)
    # what a call without a deadline may report as its time remaining
    assert batches.submit("pycon", "ann", timeout=threading.TIMEOUT_MAX * 2) == "ann"
