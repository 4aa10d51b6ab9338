"""The trainer: the loop, checkpoints and exact resume, device and bf16 autocast, torchrun, EMA,
the NaN guard, ``stats.jsonl``/``log.txt``, sample grids, the loss plot and the weights export.

Modules (import what you need; nothing here imports torch at package import time):

* ``plan``: resolve the ``train`` command's settings (flag > env > config file > default), no torch.
* ``rundir``: the run directory's layout and ``config.json``.
* ``trainer``: the loop itself (``run_training``).
* ``sampler``: which images go into each batch (per-epoch permutations, rank shards).
* ``checkpoint``: save/load resume checkpoints (atomic), RNG states, ``load_for_inference``.
* ``export``: ``weights.safetensors`` with string metadata.
* ``distributed``: torchrun detection, explicit gradient averaging, collective helpers.
* ``tensorboard``: the optional TensorBoard writer (``--tensorboard``).
* ``device`` (with ``amp_probe``, its torch-free store), ``ema``, ``stats``, ``grids``, ``plots``, ``signals``: the small pieces.
"""
