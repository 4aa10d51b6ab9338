"""Shared building blocks for the models (losses, gradient penalty, attention, augmentation)."""
