"""``medsyn eval``: FID/KID/precision-recall, the downstream classification test, embedding plots."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import typer

from medsyn_cli.cli.common import echo_json, log, progress
from medsyn_cli.stdin_paths import paths_from_lines

CONTEXT = {"help_option_names": ["-h", "--help"]}

_SIDE_HELP = ("a folder of images, an image, a NIfTI volume or folder of volumes, a .npy/.npz stack, "
              "or - (paths on stdin, one per line, or the JSON lines of `medsyn sample --json`)")


def _resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _format_table(result: dict[str, Any]) -> str:
    m = result["metrics"]
    rows: list[tuple[str, str]] = []
    if "fid" in m:
        rows.append(("FID", f"{m['fid']:.4f}"))
    if "fid_baseline_real_split_half" in m:
        sizes = result["settings"]["baseline"]["sizes"]
        rows.append(("FID real-vs-real", f"{m['fid_baseline_real_split_half']:.4f}  "
                                         f"(split halves {sizes[0]}/{sizes[1]}: the floor at this size)"))
    if "kid_mean" in m:
        k = result["settings"]["kid"]
        rows.append(("KID", f"{m['kid_mean']:.6f} ± {m['kid_std']:.6f}  "
                            f"({k['subsets']} subsets of {k['subset_size']})"))
    if "precision" in m:
        k = result["settings"]["pr"]["k"]
        rows.append(("precision", f"{m['precision']:.4f}  (k={k})"))
        rows.append(("recall", f"{m['recall']:.4f}  (k={k})"))
    real, fake = result["real"], result["fake"]
    cached = ", cached statistics" if real["cached"] else ""
    rows.append(("REAL", f"{real['count']} images  ({real['spec']}{cached})"))
    rows.append(("FAKE", f"{fake['count']} images  ({fake['spec']})"))
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def _run_metrics(real: str, fake: str, metrics: str, as_json: bool, weights: Path | None, baseline: bool,
                 device: str, batch_size: int | None, workers: int | None, no_cache: bool,
                 kid_subsets: int, kid_subset_size: int, kid_seed: int, pr_k: int, value_range: str,
                 real_as_is: bool = False, run: Path | None = None, fit: str | None = None,
                 sqrtm: str = "eigh") -> None:
    from medsyn_cli.errors import InputError
    from medsyn_cli.metrics.evaluate import EvalOptions, evaluate, parse_metrics
    from medsyn_cli.metrics.fid import SMALL_N

    if value_range not in ("auto", "unit", "signed"):
        raise InputError(f"--range must be auto, unit or signed, not {value_range!r}")
    options = EvalOptions(
        metrics=parse_metrics(metrics), weights=str(weights) if weights else None,
        device=_resolve_device(device), batch_size=batch_size, workers=workers, cache=not no_cache,
        baseline=baseline, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, kid_seed=kid_seed,
        pr_k=pr_k, value_range=value_range, real_as_is=real_as_is, run=str(run) if run else None, fit=fit,
        sqrtm=sqrtm,
    )
    if sqrtm not in ("eigh", "scipy"):
        raise InputError(f"unknown --sqrtm {sqrtm!r}", hint="use eigh (default) or scipy")
    if fit is not None and fit not in ("pad", "resize", "crop"):
        raise InputError(f"unknown --fit {fit!r}", hint="use pad, resize or crop")
    if real_as_is and (run or fit):
        raise InputError("--real-as-is compares REAL unprepared; it cannot take --run or --fit")
    stdin_lines = paths_from_lines(sys.stdin.read().splitlines()) if "-" in (real, fake) else None
    result = evaluate(real, fake, options, stdin_lines=stdin_lines, progress_factory=progress)
    prepared = result["real"].get("prepared")
    if prepared:
        log(f"REAL brought to {prepared['channels']}x{prepared['res']}x{prepared['res']} as training prepares data "
            f"(fit {prepared['fit']}, from the {prepared['from']}); --real-as-is compares it unprepared")
    if result.get("fid_biased_small_n"):
        log(f"warning: FID is biased upward below {SMALL_N} images per side "
            f"(REAL {result['real']['count']}, FAKE {result['fake']['count']}); compare only FIDs computed "
            f"with the same counts" + ("" if baseline else ", and see --baseline for the real-vs-real floor"))
    if as_json:
        echo_json(result)
    else:
        typer.echo(_format_table(result))


def _metric_command(default: str, summary: str, examples: list[str]) -> Callable[..., None]:
    def command(
        real: str = typer.Argument(..., help=f"REAL side: {_SIDE_HELP}."),
        fake: str = typer.Argument(..., help=f"FAKE side: {_SIDE_HELP}."),
        metrics: str = typer.Option(default, "--metrics", "-m", help="Comma-separated: fid,kid,pr."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object with every figure and setting."),
        weights: Path = typer.Option(None, "--weights", envvar="MEDSYN_FID_WEIGHTS",
                                     help="FID Inception weights file (default: the cache, else download)."),
        baseline: bool = typer.Option(False, "--baseline", help="Add a real-vs-real split-half FID (the floor)."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
        batch_size: int = typer.Option(None, "--batch-size", min=1, help="Images per forward pass."),
        workers: int = typer.Option(None, "--workers", min=1, help="Image decoding threads."),
        no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write REAL's cached statistics."),
        kid_subsets: int = typer.Option(100, "--kid-subsets", min=1, help="KID: number of subsets."),
        kid_subset_size: int = typer.Option(1000, "--kid-subset-size", min=2,
                                            help="KID: subset size (capped at the smaller side)."),
        kid_seed: int = typer.Option(2020, "--kid-seed", help="KID: subset sampling seed."),
        pr_k: int = typer.Option(3, "--pr-k", min=1, help="Precision/recall: k of the k-NN radii."),
        value_range: str = typer.Option("auto", "--range",
                                        help="Float arrays: auto (negatives mean [-1,1]), unit [0,1], signed [-1,1]."),
        real_as_is: bool = typer.Option(False, "--real-as-is",
                                        help="Compare REAL as it is, even when its size differs from FAKE's."),
        run: Path = typer.Option(None, "--run", help="Prepare REAL at this run directory's resolution, channels "
                                                     "and fit (as its training data was prepared)."),
        fit: str = typer.Option(None, "--fit", help="Square fit when REAL is prepared: pad, resize or crop "
                                                    "[default: the run's with --run, else resize]."),
        sqrtm: str = typer.Option("eigh", "--sqrtm", help="FID's trace of the matrix square root: eigh (symmetric "
                                                          "eigendecompositions, fast) or scipy (pytorch-fid's sqrtm)."),
    ) -> None:
        _run_metrics(real, fake, metrics, as_json, weights, baseline, device, batch_size, workers, no_cache,
                     kid_subsets, kid_subset_size, kid_seed, pr_k, value_range, real_as_is, run, fit, sqrtm)

    command.__doc__ = f"""{summary}

    Each side is {_SIDE_HELP}. When FAKE's images share one square size and REAL's do not,
    REAL is first brought to FAKE's size and channels through the training data pipeline (or to
    --run's settings), as the papers compare: one line on stderr says so; --real-as-is turns it
    off. Images become uint8 RGB, are resized to 299x299 (bilinear, as pytorch-fid) and fed to the
    FID Inception network; REAL's statistics are cached. See docs/metrics.md for the details.

    Examples:

{chr(10).join(" " * 8 + e for e in examples)}
    """
    return command


def register_metric_commands(app: typer.Typer) -> None:
    app.command("fid")(_metric_command(
        "fid", "Fréchet Inception Distance of FAKE against REAL (pytorch-fid 0.3.0's numbers).",
        ["medsyn eval fid ./covid-ct fake/",
         "medsyn eval fid ./covid-ct fake/ --run runs/hagan-64",
         "medsyn sample runs/hagan-64 --n 2000 --out fake | medsyn eval fid ./covid-ct -",
         "medsyn eval fid real/ samples.npz --metrics fid,kid,pr --json",
         "medsyn eval fid real/ fake/ --baseline --weights fid-inception-pool3.pth"]))
    app.command("kid")(_metric_command(
        "kid", "Kernel Inception Distance (unbiased, polynomial kernel, mean ± std over subsets).",
        ["medsyn eval kid ./covid-ct fake/",
         "medsyn eval kid real/ fake/ --kid-subsets 50 --kid-subset-size 500 --json"]))
    app.command("pr")(_metric_command(
        "pr", "Improved precision and recall (Kynkäänniemi et al. 2019, k-NN manifolds, k=3).",
        ["medsyn eval pr ./covid-ct fake/",
         "medsyn eval pr real/ fake/ --pr-k 5 --json"]))


def _clean(obj: Any) -> Any:
    """NaN (e.g. AUC without both classes in a test split) -> null, so the JSON stays valid."""
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def classify(
    data: Path = typer.Option(..., "--data", help="Folder with two class subfolders, e.g. normal/ and tumor/, "
                              "or a folder from `medsyn data prepare brats` (its case split is used)."),
    synthetic: str = typer.Option(None, "--synthetic", help=f"Synthetic images for the synthetic arm: {_SIDE_HELP}."),
    synthetic_label: str = typer.Option(None, "--synthetic-label",
                                        help="Class the synthetic images are labelled (default: the positive class)."),
    synthetic_normal: str = typer.Option(None, "--synthetic-normal",
                                         help="Synthetic images of the negative class too (tumor->normal), "
                                         "added to the synthetic arm."),
    test_cases: str = typer.Option(None, "--test-cases", help="Cases held out for testing: comma-separated, or "
                                   "@FILE with one per line (a case = file name without _z<index>)."),
    seeds: int = typer.Option(3, "--seeds", min=1, help="Repeat with seeds 0..K-1 (split and initialisation)."),
    epochs: int = typer.Option(20, "--epochs", min=1, help="Training epochs per run."),
    res: int = typer.Option(128, "--res", min=32, help="Images are fitted into RES x RES."),
    batch_size: int = typer.Option(32, "--batch-size", min=2, help="Training batch size."),
    lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate."),
    arms: str = typer.Option(",".join(("real", "oversample", "undersample", "augment", "synthetic")), "--arms",
                             help="Comma-separated arms: real,oversample,undersample,augment,synthetic."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Downstream test (SAG-GAN protocol): does adding synthetic images help a ResNet18 classifier?

    A ResNet18 (1-channel input, trained from scratch) learns the two classes of DATA once per arm:
    real only, oversampled minority, undersampled majority, classic augmentation, and real plus the
    SYNTHETIC images (and --synthetic-normal, the other direction). The split is by case: a prepared
    BraTS folder's own split (so no test case was in GAN training), --test-cases, or a seeded 70/20/10
    split of the cases named in the files (`<case>_z<index>`). The epoch with the best validation
    accuracy is tested; accuracy, AUC, TPR and TNR are reported as mean ± std over seeds, with the
    paper's relative improvement over `real` ((m - m_real) / (1 - m_real)). The positive class is
    `tumor` when present, else the second class alphabetically.

    Examples:

        medsyn eval classify --data brats-prepared/ --synthetic syn-tumor/ --synthetic-normal syn-normal/

        medsyn eval classify --data brats-slices/ --synthetic fake_tumor/ --test-cases @test_cases.txt

        medsyn eval classify --data brats-slices/ --synthetic fake/ --seeds 5 --epochs 30 --json

        medsyn eval classify --data ./labelled --arms real,augment --res 64 --device cuda
    """
    from medsyn_cli.errors import InputError
    from medsyn_cli.metrics import classify as clf

    wanted = tuple(dict.fromkeys(a.strip().lower() for a in arms.split(",") if a.strip()))
    unknown = [a for a in wanted if a not in clf.ARMS]
    if unknown or not wanted:
        raise InputError(f"unknown arm(s) {', '.join(unknown) or '(none)'}", hint=f"choose from {','.join(clf.ARMS)}")
    if "synthetic" in wanted and synthetic is None:
        if arms != ",".join(clf.ARMS):
            raise InputError("the synthetic arm needs --synthetic FAKE_DIR")
        log("note: no --synthetic given; skipping the synthetic arm")
        wanted = tuple(a for a in wanted if a != "synthetic")
    dev = _resolve_device(device)
    dataset = clf.load_labelled(data, res)
    label = 1
    if synthetic_label is not None:
        if synthetic_label not in dataset.classes:
            raise InputError(f"--synthetic-label {synthetic_label!r} is not a class of DATA",
                             path=data, hint=f"classes: {', '.join(dataset.classes)}")
        label = dataset.classes.index(synthetic_label)
    if synthetic_normal is not None and synthetic is None:
        raise InputError("--synthetic-normal adds to the synthetic arm, which needs --synthetic")
    held_cases = _test_case_list(test_cases)
    held_out = clf.held_out_cases(dataset, held_cases)
    fakes = []
    if "synthetic" in wanted:
        fakes.append((clf.load_synthetic(synthetic, res, held_out), label))
        if synthetic_normal is not None:
            fakes.append((clf.load_synthetic(synthetic_normal, res, held_out), 1 - label))
    counts = {dataset.classes[c]: int((dataset.labels == c).sum()) for c in (0, 1)}
    if min(counts.values()) < 3:
        raise InputError(f"each class needs at least 3 images for a 70/20/10 split, got {counts}", path=data)
    settings = clf.TrainSettings(epochs=epochs, batch_size=batch_size, lr=lr, device=dev)
    with progress() as bar:
        task = bar.add_task("classify", total=seeds * len(wanted) * epochs, info="")
        result = clf.run_protocol(dataset, fakes or None, label, seeds=seeds, arms=wanted, settings=settings,
                                  on_epoch=lambda: bar.advance(task, 1), test_cases=held_cases)
    out = {
        **result,
        "classes": {"negative": dataset.classes[0], "positive": dataset.classes[1]},
        "counts": counts,
        "synthetic": None if not fakes else {"spec": synthetic, "count": int(len(fakes[0][0])),
                                             "label": dataset.classes[label]},
        "synthetic_normal": None if len(fakes) < 2 else {"spec": synthetic_normal, "count": int(len(fakes[1][0])),
                                                         "label": dataset.classes[1 - label]},
        "settings": {"network": "torchvision resnet18, weights=None, conv1 1-channel, 2 outputs",
                     "optimizer": f"Adam lr={lr}", "loss": "cross-entropy", "epochs": epochs,
                     "batch_size": batch_size, "res": res, "seeds": list(range(seeds)), "device": dev,
                     "split": result["split"], "selection": "best validation accuracy",
                     "threshold": "P(positive) > 0.5", "std": "sample std (ddof=1) over seeds"},
    }
    if as_json:
        echo_json(_clean(out))
        return
    head = f"{'arm':<12} {'accuracy':>15} {'AUC':>15} {'TPR':>15} {'TNR':>15} {'rel.imp acc':>12} {'AUC':>8}"
    lines = [head]
    for arm, figs in result["arms"].items():
        cells = [f"{figs[k]['mean']:.3f} ± {figs[k]['std']:.3f}" for k in ("accuracy", "auc", "tpr", "tnr")]
        rel = figs.get("relative_improvement", {})
        cells += [f"{rel[k] * 100:+.2f}%" if k in rel else "" for k in ("accuracy", "auc")]
        lines.append(f"{arm:<12} " + " ".join(f"{c:>{w}}" for c, w in zip(cells, (15, 15, 15, 15, 12, 8))))
    lines.append(f"positive class: {dataset.classes[1]}; {seeds} seed(s), {epochs} epoch(s); split "
                 f"{result['split']}; test {result['splits'][0]['test']}")
    typer.echo("\n".join(lines))


def _test_case_list(spec: str | None) -> list[str] | None:
    """``a,b,c`` or ``@FILE`` (one case per line, # comments) -> case names."""
    from medsyn_cli.errors import InputError

    if spec is None:
        return None
    if spec.startswith("@"):
        path = Path(spec[1:])
        if not path.is_file():
            raise InputError("no such file", path=path)
        items = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    else:
        items = [c.strip() for c in spec.split(",")]
    names = [c for c in items if c]
    if not names:
        raise InputError("--test-cases names no case")
    return names


def embed(
    real: str = typer.Argument(..., help=f"REAL side: {_SIDE_HELP}."),
    fake: str = typer.Argument(..., help=f"FAKE side: {_SIDE_HELP}."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the PNG plots."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing plots."),
    weights: Path = typer.Option(None, "--weights", envvar="MEDSYN_FID_WEIGHTS", help="FID Inception weights file."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    batch_size: int = typer.Option(None, "--batch-size", min=1, help="Images per forward pass."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of the paths."),
    gaussian_samples: int = typer.Option(
        0, "--gaussian-samples", min=0, metavar="N",
        help="Also fit a normal to each side's features and plot PCA/KDE of N samples of each "
             "(gaussian_*.png), as the CT thesis drew them; 0: off."),
) -> None:
    """PCA of the Inception features of REAL and FAKE: 2D and 3D scatter plots and kernel densities.

    Writes pca_2d.png, pca_3d.png, kde_1d.png and kde_2d.png into OUT and prints their paths, one
    per line. The features are the FID network's (REAL's come from the statistics cache when present).
    With --gaussian-samples N, the same four plots of N draws from the normal fitted to each side
    (mean and covariance, as FID fits them; seed 0) are written beside them as gaussian_*.png.

    Examples:

        medsyn eval embed ./covid-ct fake/ --out plots/

        medsyn eval embed ./ct-kidney fake/ --out plots/ --gaussian-samples 2000

        medsyn sample runs/hagan-64 --n 500 --out fake | medsyn eval embed ./covid-ct - --out plots/
    """
    from medsyn_cli.errors import InputError
    from medsyn_cli.metrics.embed import FILES, GAUSSIAN_FILES, plot_embeddings, plot_gaussian_embeddings
    from medsyn_cli.outputs import check_plot_outputs, write_plots
    from medsyn_cli.metrics.evaluate import side_features
    from medsyn_cli.metrics.features import FeatureExtractor
    from medsyn_cli.metrics.inputs import resolve_input
    from medsyn_cli.metrics.weights import resolve_weights

    if real == "-" and fake == "-":
        raise InputError("only one side can be read from stdin ('-')")
    check_plot_outputs(out, FILES + (GAUSSIAN_FILES if gaussian_samples else ()), force)  # before any work
    stdin_lines = paths_from_lines(sys.stdin.read().splitlines()) if "-" in (real, fake) else None
    real_in = resolve_input(real, stdin_lines=stdin_lines, name="REAL")
    fake_in = resolve_input(fake, stdin_lines=stdin_lines, name="FAKE")
    extractor = FeatureExtractor(resolve_weights(str(weights) if weights else None),
                                 device=_resolve_device(device), batch_size=batch_size)
    r = side_features(real_in, extractor, use_cache=True, label="REAL")
    f = side_features(fake_in, extractor, use_cache=False, label="FAKE")
    if min(len(r.features), len(f.features)) < 3:
        raise InputError("embedding plots need at least 3 images per side")

    def write() -> dict:
        result = plot_embeddings(r.features, f.features, out)
        if gaussian_samples:
            result["gaussian"] = plot_gaussian_embeddings(r.features, f.features, out, gaussian_samples)
        return result

    result = write_plots(out, write)
    if as_json:
        echo_json({**result, "real": real_in.describe(), "fake": fake_in.describe(),
                   "settings": extractor.settings()})
    else:
        for p in result["files"] + result.get("gaussian", {}).get("files", []):
            typer.echo(p)


def attention(
    run: str = typer.Argument(..., help="A translation run directory, checkpoint or .safetensors export."),
    data: Path = typer.Option(..., "--data", help="Folder with tumor/ and masks/ (e.g. PREPARED/test)."),
    threshold: float = typer.Option(0.5, "--threshold", help="Attention above this counts as the model's tumor."),
    which: str = typer.Option("last", "--weights", "-w", help="last or best (best.safetensors) of a run directory."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Dice of a translation model's attention maps with the true tumor masks.

    Each masked tumor slice of DATA is translated to normal; the attention map (where the model
    changes the image), thresholded at --threshold, is compared with the slice's mask. Prints the
    mean and median Dice, a soft Dice (no threshold) and the mean per case. The papers show these
    maps but never score them. Score on held-out cases: the test/ part of a prepared BraTS folder.

    Examples:

        medsyn eval attention runs/sag-gan-64 --data brats-flair/test

        medsyn eval attention runs/sag-gan-64 --data brats-flair/test --weights best --json
    """
    from medsyn_cli.data import load_dataset
    from medsyn_cli.errors import InputError
    from medsyn_cli.metrics.attention import attention_dice
    from medsyn_cli.training.checkpoint import load_for_inference

    if not 0.0 <= threshold < 1.0:
        raise InputError(f"--threshold must be in [0, 1), not {threshold}")
    model, meta = load_for_inference(run, _resolve_device(device), weights=which)
    if getattr(model, "task", None) != "translation":
        raise InputError(f"{meta.get('model')} is unconditional: it has no attention maps", path=run)
    pair = load_dataset(data, res=model.res, channels=model.channels, task="translation")
    result = {**attention_dice(model, pair.tumor, threshold=threshold), "model": meta.get("model"),
              "step": meta.get("step"), "weights": meta.get("source"), "data": str(data)}
    if as_json:
        echo_json(result)
        return
    typer.echo(f"Dice      {result['dice_mean']:.4f} mean, {result['dice_median']:.4f} median "
               f"({result['slices']} masked slices, attention > {threshold:g})")
    typer.echo(f"soft Dice {result['soft_dice_mean']:.4f}")
    for case, v in result["per_case"].items():
        typer.echo(f"  {case}: {v['dice_mean']:.4f} ({v['slices']} slices)")


def build_eval_app() -> typer.Typer:
    """A fresh ``eval`` group (each root app gets its own, so commands are never added twice)."""
    from medsyn_cli.cli import eval_edges

    app = typer.Typer(
        help="Evaluate synthetic images: FID, KID, precision/recall, classification, embeddings, edges.\n\n"
             "Examples:\n\n    medsyn eval fid ./covid-ct fake/ --json\n"
             "    medsyn sample runs/dcgan-64 --n 500 --out fake/ --json | medsyn eval kid ./covid-ct -\n"
             "    medsyn eval edges ./covid-ct fake/\n",
        no_args_is_help=True,
        context_settings=CONTEXT,
    )
    register_metric_commands(app)
    app.command("classify")(classify)
    app.command("embed")(embed)
    app.command("attention")(attention)
    eval_edges.register(app)
    return app


def register(app: typer.Typer) -> None:
    app.add_typer(build_eval_app(), name="eval")
