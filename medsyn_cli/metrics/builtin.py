"""The built-in metrics, a default plugin: registered through ``register_metrics`` like a third party's.

fid, kid and pr compare the Inception features of REAL and FAKE; the classification test (labelled
data, not REAL FAKE) and the edge statistics (grey images at one size) have commands of their own.
"""

from __future__ import annotations

import time

from medsyn_cli.errors import InputError
from medsyn_cli.hookspecs import hookimpl
from medsyn_cli.metrics import fid as fid_mod
from medsyn_cli.metrics.kid import DEFAULT_SEED, DEFAULT_SUBSET_SIZE, DEFAULT_SUBSETS, kid
from medsyn_cli.metrics.precision_recall import DEFAULT_K, precision_recall
from medsyn_cli.metrics.registry import Metric, MetricInputs, MetricOption


def _fid(inputs: MetricInputs, options: dict) -> dict:
    real, fake = inputs.real_side, inputs.fake_side
    sqrtm = options["sqrtm"]
    if sqrtm not in ("eigh", "scipy"):
        raise InputError(f"unknown --sqrtm {sqrtm!r}", hint="use eigh (default) or scipy")
    features = (real.features, fake.features) if real.features is not None and fake.features is not None else None
    figures = {"fid": fid_mod.frechet_distance(real.mu, real.sigma, fake.mu, fake.sigma, sqrtm=sqrtm,
                                               features=features)}
    eigh = ("Tr sqrtm(S1 S2) as the singular values' sum of the centred features' n1 x n2 cross-product "
            "(eigh; exact, fewer images than dimensions)" if fid_mod.low_rank(features)
            else "Tr sqrtm(S1 S2) from symmetric eigendecompositions (eigh)")
    settings = {"fid": {"statistics": "float64 mean and covariance (ddof=1)",
                        "sqrtm": (eigh if sqrtm == "eigh"
                                  else "scipy.linalg.sqrtm(S1 @ S2); eps=1e-6 offset if not finite; "
                                       "real part if imaginary diagonal within 1e-3 (pytorch-fid 0.3.0)")}}
    seconds = {}
    if options["baseline"]:
        t = time.perf_counter()
        a, b = fid_mod.split_half_indices(len(real.features), options["baseline_seed"])
        if min(len(a), len(b)) < 2:
            raise InputError("REAL needs at least 4 images for a split-half baseline", path=inputs.real.spec)
        figures["fid_baseline_real_split_half"] = fid_mod.fid_from_features(real.features[a], real.features[b])
        seconds["baseline"] = round(time.perf_counter() - t, 3)
        settings["baseline"] = {"split": "seeded random halves of REAL", "seed": options["baseline_seed"],
                                "sizes": [int(len(a)), int(len(b))]}
    biased = min(len(inputs.real), len(inputs.fake)) < fid_mod.SMALL_N
    return {"metrics": figures, "settings": settings, "seconds": seconds, "result": {"fid_biased_small_n": biased}}


def _fid_rows(result: dict) -> list[tuple[str, str]]:
    m = result["metrics"]
    rows = [("FID", f"{m['fid']:.4f}")]
    if "fid_baseline_real_split_half" in m:
        sizes = result["settings"]["baseline"]["sizes"]
        rows.append(("FID real-vs-real", f"{m['fid_baseline_real_split_half']:.4f}  "
                                         f"(split halves {sizes[0]}/{sizes[1]}: the floor at this size)"))
    return rows


def _kid(inputs: MetricInputs, options: dict) -> dict:
    k = kid(inputs.fake_features, inputs.real_features, subsets=options["kid_subsets"],
            subset_size=options["kid_subset_size"], seed=options["kid_seed"])
    figures = {"kid_mean": k.pop("mean"), "kid_std": k.pop("std")}
    return {"metrics": figures, "settings": {"kid": {**k, "kernel": "polynomial (x.y*gamma + coef0)^degree",
                                                     "estimator": "unbiased MMD^2, mean and std over subsets "
                                                                  "(torch-fidelity)"}}}


def _kid_rows(result: dict) -> list[tuple[str, str]]:
    m, k = result["metrics"], result["settings"]["kid"]
    return [("KID", f"{m['kid_mean']:.6f} ± {m['kid_std']:.6f}  ({k['subsets']} subsets of {k['subset_size']})")]


def _pr(inputs: MetricInputs, options: dict) -> dict:
    real, fake, k = inputs.real_features, inputs.fake_features, options["pr_k"]
    if min(len(real), len(fake)) <= k:
        raise InputError(f"precision/recall with k={k} needs more than {k} "
                         f"images per side (REAL {len(real)}, FAKE {len(fake)})")
    pr = precision_recall(real, fake, k=k)
    return {"metrics": {"precision": pr["precision"], "recall": pr["recall"]},
            "settings": {"pr": {"k": pr["k"], "method": "k-NN manifolds on Inception pool3 features "
                                                        "(Kynkaenniemi et al. 2019)"}}}


def _pr_rows(result: dict) -> list[tuple[str, str]]:
    m, k = result["metrics"], result["settings"]["pr"]["k"]
    return [("precision", f"{m['precision']:.4f}  (k={k})"), ("recall", f"{m['recall']:.4f}  (k={k})")]


FID = Metric(
    name="fid", summary="Fréchet Inception Distance of FAKE against REAL (pytorch-fid 0.3.0's numbers).",
    compute=_fid, rows=_fid_rows,
    options=(MetricOption("baseline", False, "Add a real-vs-real split-half FID (the floor).", flag="--baseline",
                          requires_metric=True),
             MetricOption("baseline_seed", 0, "Seed of the split-half baseline."),
             MetricOption("sqrtm", "eigh", "FID's trace of the matrix square root: eigh (exact: symmetric "
                                           "eigendecompositions, or the features' cross-product below 2048 "
                                           "images; fast) or scipy (pytorch-fid's sqrtm).", flag="--sqrtm")),
    examples=("medsyn eval fid ./covid-ct fake/",
              "medsyn eval fid ./covid-ct fake/ --run runs/hagan-64",
              "medsyn sample runs/hagan-64 --n 2000 --out fake | medsyn eval fid ./covid-ct -",
              "medsyn eval fid real/ samples.npz --metrics fid,kid,pr --json",
              "medsyn eval fid real/ fake/ --baseline --weights fid-inception-pool3.pth"))

KID = Metric(
    name="kid", summary="Kernel Inception Distance (unbiased, polynomial kernel, mean ± std over subsets).",
    compute=_kid, rows=_kid_rows,
    options=(MetricOption("kid_subsets", DEFAULT_SUBSETS, "KID: number of subsets.", flag="--kid-subsets", min=1),
             MetricOption("kid_subset_size", DEFAULT_SUBSET_SIZE, "KID: subset size (capped at the smaller side).",
                          flag="--kid-subset-size", min=2),
             MetricOption("kid_seed", DEFAULT_SEED, "KID: subset sampling seed.", flag="--kid-seed")),
    examples=("medsyn eval kid ./covid-ct fake/",
              "medsyn eval kid real/ fake/ --kid-subsets 50 --kid-subset-size 500 --json"))

PR = Metric(
    name="pr", summary="Improved precision and recall (Kynkäänniemi et al. 2019, k-NN manifolds, k=3).",
    compute=_pr, rows=_pr_rows,
    options=(MetricOption("pr_k", DEFAULT_K, "Precision/recall: k of the k-NN radii.", flag="--pr-k", min=1),),
    examples=("medsyn eval pr ./covid-ct fake/", "medsyn eval pr real/ fake/ --pr-k 5 --json"))

CLASSIFY = Metric(
    name="classify", needs="images", command="medsyn_cli.cli.eval:classify",
    summary="Downstream test (SAG-GAN protocol): does adding synthetic images help a ResNet18 classifier?")

ATTENTION = Metric(
    name="attention", needs="images", command="medsyn_cli.cli.eval_translation:attention",
    summary="Dice of a translation model's attention maps with the true tumor masks.")

TRANSLATION = Metric(
    name="translation", needs="images", command="medsyn_cli.cli.eval_translation:eval_translation",
    summary="Does a translation model translate held-out slices? Conversion by a judge, FID/KID, where the change is.")

EDGES = Metric(
    name="edges", needs="images", command="medsyn_cli.cli.eval_edges:eval_edges",
    summary="Compare edge density, background noise, broken lines and gradient magnitudes of REAL and FAKE.")


@hookimpl
def register_metrics(register):
    for metric in (FID, KID, PR, CLASSIFY, EDGES, ATTENTION, TRANSLATION):
        register(metric)
