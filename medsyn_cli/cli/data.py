"""`medsyn data` (being written)."""


def register(app) -> None:
    pass
