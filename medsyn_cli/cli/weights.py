"""`medsyn weights` (being written)."""


def register(app) -> None:
    pass
