"""`medsyn translate` (being written)."""


def register(app) -> None:
    pass
