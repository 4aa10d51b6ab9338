"""`medsyn edges` (being written)."""


def register(app) -> None:
    pass
