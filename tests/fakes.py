"""In-memory stand-ins shared by the unit and servicer tests."""

from __future__ import annotations

from typing import Self


class FakeUnitOfWork:
    """A unit of work with nothing behind it; subclasses add the fake repositories a test needs."""

    committed = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def commit(self) -> None:
        self.committed = True


class CallContext:
    """What a servicer method reads and sets of its call: the caller's metadata, the trailing metadata."""

    def __init__(self, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        self._metadata = metadata
        self.trailing: tuple[tuple[str, str], ...] = ()

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def set_trailing_metadata(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.trailing = metadata

    def time_remaining(self) -> float | None:
        return None  # no deadline
