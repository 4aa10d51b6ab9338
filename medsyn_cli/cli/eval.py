"""`medsyn eval` (being written)."""


def register(app) -> None:
    pass
