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
