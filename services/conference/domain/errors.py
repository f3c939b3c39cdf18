"""What the conference service refuses, with stable codes."""

from confbook_common.errors import AlreadyExists, NotFound


class ConferenceNotFound(NotFound):
    code = "CONFERENCE_NOT_FOUND"

    def __init__(self, key: str | int) -> None:
        super().__init__(f"no conference {key!r}")


class ConferenceNameTaken(AlreadyExists):
    code = "CONFERENCE_EXISTS"

    def __init__(self, name: str) -> None:
        super().__init__(f"a conference named {name!r} already exists (names ignore case)")
