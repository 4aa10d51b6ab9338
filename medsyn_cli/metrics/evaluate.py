"""FID, KID and precision/recall of a fake image set against a real one, with every setting recorded.

The real side's features and statistics are cached (see :mod:`stats_cache`); the fake side is
computed each time. The result is a JSON-ready dict: the figures, the counts, whether the real
side came from the cache, and every setting that changes a number.
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
from medsyn_cli.metrics.kid import DEFAULT_SEED, DEFAULT_SUBSET_SIZE, DEFAULT_SUBSETS, kid
from medsyn_cli.metrics.precision_recall import DEFAULT_K, precision_recall
from medsyn_cli.metrics.weights import resolve_weights

METRICS = ("fid", "kid", "pr")


@dataclass
class EvalOptions:
    metrics: tuple[str, ...] = ("fid",)
    weights: str | None = None
    device: str = "cpu"
    batch_size: int | None = None
    workers: int | None = None
    cache: bool = True  # cache the real side's features/statistics
    baseline: bool = False  # real-vs-real split-half FID
    kid_subsets: int = DEFAULT_SUBSETS
    kid_subset_size: int = DEFAULT_SUBSET_SIZE
    kid_seed: int = DEFAULT_SEED
    pr_k: int = DEFAULT_K
    value_range: str = "auto"
    baseline_seed: int = 0
    real_as_is: bool = False  # compare REAL as it is, even when its size differs from FAKE's
    run: str | None = None  # take the resolution, channels and fit from this run directory
    fit: str | None = None  # square fit for REAL when it is prepared (default: the run's, else resize)
    sqrtm: str = "eigh"  # trace of the matrix square root: eigh (fast) or scipy (pytorch-fid's sqrtm)


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
    """Built-in metric names plus any registered by plugins (``register_metrics``)."""
    from medsyn_cli.metrics.plugin_metrics import plugin_metrics

    names = tuple(dict.fromkeys(m.strip().lower() for m in text.split(",") if m.strip()))
    known = (*METRICS, *plugin_metrics())
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


def evaluate(real_spec: str, fake_spec: str, options: EvalOptions, *,
             stdin_lines: list[str] | None = None,
             progress_factory: Callable[[], Any] | None = None) -> dict[str, Any]:
    """Compute ``options.metrics`` for FAKE against REAL; returns the JSON-ready result."""
    if real_spec == "-" and fake_spec == "-":
        raise InputError("only one side can be read from stdin ('-')")
    if options.baseline and "fid" not in options.metrics:
        raise InputError("--baseline is a real-vs-real FID; add fid to --metrics")
    t0 = time.perf_counter()
    real_in = resolve_input(real_spec, value_range=options.value_range, stdin_lines=stdin_lines, name="REAL")
    fake_in = resolve_input(fake_spec, value_range=options.value_range, stdin_lines=stdin_lines, name="FAKE")
    prepared = None
    if not options.real_as_is:
        real_in, prepared = _like_fake(real_spec, real_in, fake_in, options, stdin_lines)
    weights = resolve_weights(options.weights)
    extractor = FeatureExtractor(weights, device=options.device, batch_size=options.batch_size,
                                 workers=options.workers)

    with (progress_factory() if progress_factory else nullcontext(None)) as bar:
        def ticker(label: str, total: int):
            if bar is None:
                return None
            task = bar.add_task(f"features {label}", total=total, info="")
            return lambda n: bar.advance(task, n)

        real = side_features(real_in, extractor, use_cache=options.cache, label="REAL",
                             on_batch=ticker("REAL", len(real_in)))
        fake = side_features(fake_in, extractor, use_cache=False, label="FAKE",
                             on_batch=ticker("FAKE", len(fake_in)))
    check_channels(real, fake, real_spec, fake_spec)

    figures: dict[str, Any] = {}
    seconds = {"real_features": round(real.seconds, 3),
               "fake_features": round(fake.seconds, 3)}
    settings: dict[str, Any] = {**extractor.settings(), "pixel_pipeline":
                                "uint8 RGB (PIL convert('RGB'); grey replicated) -> /255 -> resize -> 2x-1",
                                "array_value_range": options.value_range,
                                "pipeline_version": PIPELINE_VERSION}
    if "fid" in options.metrics:
        t = time.perf_counter()
        figures["fid"] = fid_mod.frechet_distance(real.mu, real.sigma, fake.mu, fake.sigma, sqrtm=options.sqrtm)
        seconds["fid"] = round(time.perf_counter() - t, 3)
        settings["fid"] = {"statistics": "float64 mean and covariance (ddof=1)",
                           "sqrtm": ("Tr sqrtm(S1 S2) from symmetric eigendecompositions (eigh)" if options.sqrtm == "eigh"
                                     else "scipy.linalg.sqrtm(S1 @ S2); eps=1e-6 offset if not finite; "
                                          "real part if imaginary diagonal within 1e-3 (pytorch-fid 0.3.0)")}
        if options.baseline:
            t = time.perf_counter()
            a, b = fid_mod.split_half_indices(len(real.features), options.baseline_seed)
            if min(len(a), len(b)) < 2:
                raise InputError("REAL needs at least 4 images for a split-half baseline", path=real_spec)
            figures["fid_baseline_real_split_half"] = fid_mod.fid_from_features(real.features[a],
                                                                               real.features[b])
            seconds["baseline"] = round(time.perf_counter() - t, 3)
            settings["baseline"] = {"split": "seeded random halves of REAL", "seed": options.baseline_seed,
                                    "sizes": [int(len(a)), int(len(b))]}
    if "kid" in options.metrics:
        t = time.perf_counter()
        k = kid(fake.features, real.features, subsets=options.kid_subsets,
                subset_size=options.kid_subset_size, seed=options.kid_seed)
        figures["kid_mean"], figures["kid_std"] = k.pop("mean"), k.pop("std")
        settings["kid"] = {**k, "kernel": "polynomial (x.y*gamma + coef0)^degree",
                           "estimator": "unbiased MMD^2, mean and std over subsets (torch-fidelity)"}
        seconds["kid"] = round(time.perf_counter() - t, 3)
    if "pr" in options.metrics:
        t = time.perf_counter()
        if min(len(real.features), len(fake.features)) <= options.pr_k:
            raise InputError(f"precision/recall with k={options.pr_k} needs more than {options.pr_k} "
                             f"images per side (REAL {len(real.features)}, FAKE {len(fake.features)})")
        pr = precision_recall(real.features, fake.features, k=options.pr_k)
        figures["precision"], figures["recall"] = pr["precision"], pr["recall"]
        settings["pr"] = {"k": pr["k"], "method": "k-NN manifolds on Inception pool3 features "
                                                  "(Kynkaenniemi et al. 2019)"}
        seconds["pr"] = round(time.perf_counter() - t, 3)
    extra = [m for m in options.metrics if m not in METRICS]
    if extra:
        from medsyn_cli.metrics.plugin_metrics import compute, plugin_metrics

        registered = plugin_metrics()
        for name in extra:
            t = time.perf_counter()
            figures.update(compute(name, registered[name], real.features, fake.features))
            seconds[name] = round(time.perf_counter() - t, 3)
    seconds["total"] = round(time.perf_counter() - t0, 3)

    n_real, n_fake = len(real_in), len(fake_in)
    biased = "fid" in options.metrics and min(n_real, n_fake) < fid_mod.SMALL_N
    from medsyn_cli import __version__

    result: dict[str, Any] = {
        "metrics": figures,
        "real": {**real_in.describe(), "cached": real.cached, "cache_key": real.cache_key,
                 "channels": sorted(real.channels), "prepared": prepared},
        "fake": {**fake_in.describe(), "cached": False, "channels": sorted(fake.channels)},
        "settings": settings,
        "seconds": seconds,
        "medsyn_version": __version__,
    }
    if "fid" in options.metrics:
        result["fid_biased_small_n"] = biased
    return result
