"""What the conference service refuses, with stable codes."""

from confbook_common.errors import AlreadyExists, NotFound
from confbook_common.validation import shown


class ConferenceNotFound(NotFound):
    code = "CONFERENCE_NOT_FOUND"

    def __init__(self, key: str | int) -> None:
        super().__init__(f"no conference {shown(key) if isinstance(key, str) else key}")


class ConferenceNameTaken(AlreadyExists):
    code = "CONFERENCE_EXISTS"

    def __init__(self, name: str) -> None:
        super().__init__(f"a conference named {shown(name)} already exists (names ignore case)")
