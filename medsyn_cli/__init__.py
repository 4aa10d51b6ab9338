"""medsyn: terminal-first medical image synthesis with GANs."""

__version__ = "0.1.0"
