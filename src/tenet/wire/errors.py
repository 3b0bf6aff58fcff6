"""Decode failures say where: the byte offset and what was wrong there."""


class DecodeError(ValueError):
    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(f"offset {offset}: {reason}")
        self.offset = offset
        self.reason = reason
