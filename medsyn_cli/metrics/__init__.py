"""Evaluation of synthetic images (see docs/metrics.md).

``inception`` (the FID network), ``weights`` (find/verify/import/download its weights), ``inputs``
(what a side may be), ``features`` (pytorch-fid's preprocessing, fast), ``stats_cache`` (cached
reference statistics), ``fid``, ``kid``, ``precision_recall``, ``evaluate`` (all of them with every
setting recorded), ``classify`` (the SAG-GAN downstream test) and ``embed`` (PCA and density plots).
Modules import torch lazily or not at all, so importing this package stays cheap.
"""
