"""Every selected metric of a fake image set against a real one, with every setting recorded.

A loop over the metric registry (:mod:`medsyn_cli.metrics.registry`; fid, kid and pr are the
built-in default plugin's): the sides are read once, REAL is prepared like FAKE, and the Inception
features are computed only when a selected metric needs them. The real side's features and
statistics are cached (see :mod:`stats_cache`); the fake side is computed each time. The result is
a JSON-ready dict: the figures, the counts, whether the real side came from the cache, and every
setting that changes a number.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from medsyn_cli.errors import InputError
from medsyn_cli.metrics import fid as fid_mod
from medsyn_cli.metrics import stats_cache
from medsyn_cli.metrics.features import PIPELINE_VERSION, FeatureExtractor
from medsyn_cli.metrics.inputs import ImageInput, resolve_input
from medsyn_cli.metrics.registry import Metric, MetricInputs, all_metrics
from medsyn_cli.metrics.weights import resolve_weights


@dataclass
class EvalOptions:
    metrics: tuple[str, ...] = ("fid",)
    weights: str | None = None
    device: str = "cpu"
    batch_size: int | None = None
    workers: int | None = None
    cache: bool = True  # cache the real side's features/statistics
    value_range: str = "auto"
    real_as_is: bool = False  # compare REAL as it is, even when its size differs from FAKE's
    run: str | None = None  # take the resolution, channels and fit from this run directory
    fit: str | None = None  # square fit for REAL when it is prepared (default: the run's, else resize)
    #: Each metric's settings by option name (``kid_subsets``, ``baseline``...); unset ones take their default.
    metric_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class SideFeatures:
    features: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray
    channels: set[int]
    cached: bool
    cache_key: str | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def parse_metrics(text: str) -> tuple[str, ...]:
    """Names of registered metrics that compare REAL with FAKE (``register_metrics``), in the order given."""
    names = tuple(dict.fromkeys(m.strip().lower() for m in text.split(",") if m.strip()))
    known = tuple(name for name, m in all_metrics().items() if m.compute is not None)
    unknown = [m for m in names if m not in known]
    if unknown or not names:
        raise InputError(f"unknown metric(s) {', '.join(unknown) or '(none)'}",
                         hint=f"choose from {','.join(known)}")
    return names


def side_features(inp: ImageInput, extractor: FeatureExtractor, *, use_cache: bool, label: str,
                  on_batch: Callable[[int], None] | None = None) -> SideFeatures:
    """Features and statistics of one side, from the cache when ``use_cache`` and present."""
    start = time.perf_counter()
    key = None
    if use_cache:
        key = stats_cache.cache_key(inp.content_digest(), len(inp), extractor.weights.sha256,
                                    PIPELINE_VERSION)
        hit = stats_cache.load(key)
        if hit is not None and hit.features.shape[0] == len(inp):
            if on_batch is not None:
                on_batch(len(inp))
            return SideFeatures(hit.features, hit.mu, hit.sigma, hit.channels, True, key,
                                time.perf_counter() - start)
    feats, channels = extractor.extract(inp, on_batch)
    if len(feats) < 2:
        raise InputError(f"{label} side has {len(feats)} image; FID needs at least 2", path=inp.spec)
    mu, sigma = fid_mod.statistics(feats)
    if use_cache and key is not None:
        from medsyn_cli.outputs import write_cache_entry

        write_cache_entry(stats_cache.stats_dir() / f"{key}.npz", lambda: stats_cache.save(
            key, stats_cache.CachedStats(feats, mu, sigma, channels),
            {"spec": inp.spec, "count": len(inp), "weights_sha256": extractor.weights.sha256,
             "pipeline": PIPELINE_VERSION}), "the reference statistics")
    return SideFeatures(feats, mu, sigma, channels, False, key, time.perf_counter() - start)


def check_channels(real: SideFeatures, fake: SideFeatures, real_spec: str, fake_spec: str) -> None:
    """Refuse an all-grey side against an all-colour side (mixed sides are allowed, as pytorch-fid)."""
    if real.channels and fake.channels and real.channels.isdisjoint(fake.channels):
        def word(c: set[int]) -> str:
            return "colour (3-channel)" if c == {3} else "grey (1-channel)"

        raise InputError(f"images of different channel counts: REAL {real_spec} is {word(real.channels)}, "
                         f"FAKE {fake_spec} is {word(fake.channels)}",
                         hint="FID would measure the colour difference; convert one side first")


def _like_fake(real_spec: str, real_in: ImageInput, fake_in: ImageInput, options: EvalOptions,
               stdin_lines: list[str] | None) -> tuple[ImageInput, dict[str, Any] | None]:
    """REAL brought to FAKE's size (or the run's) through the training pipeline, when the sizes differ."""
    from medsyn_cli.metrics import prepare

    if options.run:
        target = prepare.run_target(options.run)
        if options.fit:
            target.fit = options.fit
    else:
        target = prepare.fake_target(fake_in, options.fit)
        if target is None:  # FAKE images of several sizes: nothing to bring REAL to
            return real_in, None
    if not prepare.needs_preparation(real_in, target):
        return real_in, None
    return prepare.prepare_real(real_spec, target, stdin_lines), target.as_dict()


def selected_metrics(options: EvalOptions) -> list[Metric]:
    """The selected metrics in registry order, after checking the options that need their metric."""
    registered = {n: m for n, m in all_metrics().items() if m.compute is not None}
    unknown = [n for n in options.metrics if n not in registered]
    if unknown:
        raise InputError(f"unknown metric(s) {', '.join(unknown)}", hint=f"choose from {','.join(registered)}")
    for metric in registered.values():
        for opt in metric.options:
            if (opt.requires_metric and metric.name not in options.metrics
                    and options.metric_options.get(opt.name, opt.default) != opt.default):
                raise InputError(f"{opt.flag or opt.name} belongs to {metric.name}; add {metric.name} to --metrics")
    return [m for n, m in registered.items() if n in options.metrics]


def _options_for(metric: Metric, options: EvalOptions) -> dict[str, Any]:
    return {**metric.default_options(),
            **{k: v for k, v in options.metric_options.items() if k in {o.name for o in metric.options}}}


def evaluate(real_spec: str, fake_spec: str, options: EvalOptions, *,
             stdin_lines: list[str] | None = None,
             progress_factory: Callable[[], Any] | None = None) -> dict[str, Any]:
    """Compute ``options.metrics`` for FAKE against REAL; returns the JSON-ready result."""
    if real_spec == "-" and fake_spec == "-":
        raise InputError("only one side can be read from stdin ('-')")
    metrics = selected_metrics(options)
    t0 = time.perf_counter()
    # A REAL folder with its images in subfolders (class folders) is read recursively when it is prepared.
    real_in = resolve_input(real_spec, value_range=options.value_range, stdin_lines=stdin_lines, name="REAL",
                            allow_empty=not options.real_as_is)
    fake_in = resolve_input(fake_spec, value_range=options.value_range, stdin_lines=stdin_lines, name="FAKE")
    prepared = None
    if not options.real_as_is:
        real_in, prepared = _like_fake(real_spec, real_in, fake_in, options, stdin_lines)
    if len(real_in) == 0:  # nothing at the top, and no preparation read the folder
        raise InputError("REAL side is empty: no images found", path=real_spec if real_spec != "-" else "stdin",
                         hint="folders are read recursively only when REAL is prepared like FAKE (not with "
                              "--real-as-is, or FAKE of mixed sizes)")
    inputs = MetricInputs(real_in, fake_in)
    seconds: dict[str, Any] = {}
    settings: dict[str, Any] = {}
    if any(m.needs in ("features", "both") for m in metrics):
        weights = resolve_weights(options.weights)
        extractor = FeatureExtractor(weights, device=options.device, batch_size=options.batch_size,
                                     workers=options.workers)
        with (progress_factory() if progress_factory else nullcontext(None)) as bar:
            def ticker(label: str, total: int):
                if bar is None:
                    return None
                task = bar.add_task(f"features {label}", total=total, info="")
                return lambda n: bar.advance(task, n)

            inputs.real_side = side_features(real_in, extractor, use_cache=options.cache, label="REAL",
                                             on_batch=ticker("REAL", len(real_in)))
            inputs.fake_side = side_features(fake_in, extractor, use_cache=False, label="FAKE",
                                             on_batch=ticker("FAKE", len(fake_in)))
        check_channels(inputs.real_side, inputs.fake_side, real_spec, fake_spec)
        seconds = {"real_features": round(inputs.real_side.seconds, 3),
                   "fake_features": round(inputs.fake_side.seconds, 3)}
        settings = {**extractor.settings(), "pixel_pipeline":
                    "uint8 RGB (PIL convert('RGB'); grey replicated) -> /255 -> resize -> 2x-1",
                    "array_value_range": options.value_range, "pipeline_version": PIPELINE_VERSION}
    else:
        settings = {"array_value_range": options.value_range}

    figures: dict[str, Any] = {}
    top: dict[str, Any] = {}
    for metric in metrics:
        t = time.perf_counter()
        out = metric.compute(inputs, _options_for(metric, options))
        seconds[metric.name] = round(time.perf_counter() - t, 3)
        clash = set(out.get("metrics", {})) & set(figures)
        if clash:
            raise InputError(f"metric {metric.name!r} reports {', '.join(sorted(clash))}, already reported")
        figures.update(out.get("metrics", {}))
        settings.update(out.get("settings", {}))
        seconds.update(out.get("seconds", {}))
        top.update(out.get("result", {}))
    seconds["total"] = round(time.perf_counter() - t0, 3)

    from medsyn_cli import __version__

    real, fake = inputs.real_side, inputs.fake_side
    return {
        "metrics": figures,
        "real": {**real_in.describe(), "cached": bool(real and real.cached),
                 "cache_key": real.cache_key if real else None,
                 "channels": sorted(real.channels) if real else [], "prepared": prepared},
        "fake": {**fake_in.describe(), "cached": False, "channels": sorted(fake.channels) if fake else []},
        "settings": settings,
        "seconds": seconds,
        "medsyn_version": __version__,
        **top,
    }
