"""`medsyn train` (being written)."""


def register(app) -> None:
    pass
