"""`medsyn cache` (being written)."""


def register(app) -> None:
    pass
