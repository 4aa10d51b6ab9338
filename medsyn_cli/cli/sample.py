"""`medsyn sample` (being written)."""


def register(app) -> None:
    pass
