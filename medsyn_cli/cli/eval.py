"""``medsyn eval``: FID/KID/precision-recall, the downstream classification test, embedding plots."""

from __future__ import annotations

import inspect
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


def _format_table(result: dict[str, Any], metrics: list) -> str:
    rows: list[tuple[str, str]] = [row for metric in metrics for row in metric.table_rows(result)]
    real, fake = result["real"], result["fake"]
    cached = ", cached statistics" if real["cached"] else ""
    rows.append(("REAL", f"{real['count']} images  ({real['spec']}{cached})"))
    rows.append(("FAKE", f"{fake['count']} images  ({fake['spec']})"))
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def _run_metrics(real: str, fake: str, metrics: str, as_json: bool, weights: Path | None, device: str,
                 batch_size: int | None, workers: int | None, no_cache: bool, value_range: str,
                 real_as_is: bool, run: Path | None, fit: str | None, metric_options: dict[str, Any]) -> None:
    from medsyn_cli.errors import InputError
    from medsyn_cli.metrics.evaluate import EvalOptions, evaluate, parse_metrics, selected_metrics
    from medsyn_cli.metrics.fid import SMALL_N

    if value_range not in ("auto", "unit", "signed"):
        raise InputError(f"--range must be auto, unit or signed, not {value_range!r}")
    options = EvalOptions(
        metrics=parse_metrics(metrics), weights=str(weights) if weights else None,
        device=_resolve_device(device), batch_size=batch_size, workers=workers, cache=not no_cache,
        value_range=value_range, real_as_is=real_as_is, run=str(run) if run else None, fit=fit,
        metric_options=metric_options,
    )
    if fit is not None and fit not in ("pad", "resize", "crop"):
        raise InputError(f"unknown --fit {fit!r}", hint="use pad, resize or crop")
    if real_as_is and (run or fit):
        raise InputError("--real-as-is compares REAL unprepared; it cannot take --run or --fit")
    chosen = selected_metrics(options)
    stdin_lines = paths_from_lines(sys.stdin.read().splitlines()) if "-" in (real, fake) else None
    result = evaluate(real, fake, options, stdin_lines=stdin_lines, progress_factory=progress)
    prepared = result["real"].get("prepared")
    if prepared:
        log(f"REAL brought to {prepared['channels']}x{prepared['res']}x{prepared['res']} as training prepares data "
            f"(fit {prepared['fit']}, from the {prepared['from']}); --real-as-is compares it unprepared")
    if result.get("fid_biased_small_n"):
        log(f"warning: FID is biased upward below {SMALL_N} images per side "
            f"(REAL {result['real']['count']}, FAKE {result['fake']['count']}); compare only FIDs computed "
            f"with the same counts" + ("" if metric_options.get("baseline") else
                                       ", and see --baseline for the real-vs-real floor"))
    if as_json:
        echo_json(result)
    else:
        typer.echo(_format_table(result, chosen))


def _shared_parameters(default: str, known: str) -> list[inspect.Parameter]:
    """The flags every REAL FAKE metric command has, whatever metrics it computes."""
    def opt(name: str, annotation: Any, default: Any) -> inspect.Parameter:
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)

    return [
        opt("real", str, typer.Argument(..., help=f"REAL side: {_SIDE_HELP}.")),
        opt("fake", str, typer.Argument(..., help=f"FAKE side: {_SIDE_HELP}.")),
        opt("metrics", str, typer.Option(default, "--metrics", "-m", help=f"Comma-separated: {known}.")),
        opt("as_json", bool, typer.Option(False, "--json", help="Print one JSON object with every figure and setting.")),
        opt("weights", Path, typer.Option(None, "--weights", envvar="MEDSYN_FID_WEIGHTS",
                                          help="FID Inception weights file (default: the cache, else download).")),
        opt("device", str, typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N.")),
        opt("batch_size", int, typer.Option(None, "--batch-size", min=1, help="Images per forward pass.")),
        opt("workers", int, typer.Option(None, "--workers", min=1, help="Image decoding threads.")),
        opt("no_cache", bool, typer.Option(False, "--no-cache", help="Do not read or write REAL's cached statistics.")),
        opt("value_range", str, typer.Option("auto", "--range", help="Float arrays: auto (negatives mean [-1,1]), "
                                                                     "unit [0,1], signed [-1,1].")),
        opt("real_as_is", bool, typer.Option(False, "--real-as-is",
                                             help="Compare REAL as it is, even when its size differs from FAKE's.")),
        opt("run", Path, typer.Option(None, "--run", help="Prepare REAL at this run directory's resolution, channels "
                                                          "and fit (as its training data was prepared).")),
        opt("fit", str, typer.Option(None, "--fit", help="Square fit when REAL is prepared: pad, resize or crop "
                                                         "[default: the run's with --run, else resize].")),
    ]


def _metric_parameters(metrics: list, taken: set[str]) -> list[inspect.Parameter]:
    """One flag per metric option (``--kid-subsets``...), so any metric can be combined via --metrics."""
    from medsyn_cli.plugins import report_failure

    params, names = [], set()
    for metric in metrics:
        for o in metric.options:
            if o.flag is None or o.name in names:
                continue
            if o.flag in taken or not o.name.isidentifier():
                report_failure(metric.plugin, "register_metrics", ValueError(f"option {o.flag} is already taken"))
                continue
            names.add(o.name)
            taken.add(o.flag)
            extra = {} if o.min is None else {"min": o.min}
            params.append(inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, annotation=o.type or type(o.default),
                                            default=typer.Option(o.default, o.flag, help=o.help, **extra)))
    return params


_SHARED_FLAGS = {"--metrics", "-m", "--json", "--weights", "--device", "--batch-size", "--workers", "--no-cache",
                 "--range", "--real-as-is", "--run", "--fit", "--help", "-h"}


def _metric_command(metric, comparable: list) -> Callable[..., None]:
    known = ",".join(m.name for m in comparable)
    shared = _shared_parameters(metric.name, known)
    extra = _metric_parameters(comparable, set(_SHARED_FLAGS))
    shared_names = {p.name for p in shared}

    def command(**kwargs: Any) -> None:
        metric_options = {k: v for k, v in kwargs.items() if k not in shared_names}
        args = {k: v for k, v in kwargs.items() if k in shared_names}
        _run_metrics(args["real"], args["fake"], args["metrics"], args["as_json"], args["weights"], args["device"],
                     args["batch_size"], args["workers"], args["no_cache"], args["value_range"], args["real_as_is"],
                     args["run"], args["fit"], metric_options)

    command.__signature__ = inspect.Signature(shared + extra)
    command.__name__ = metric.name
    features = (" Images become uint8 RGB, are resized to 299x299 (bilinear, as pytorch-fid) and fed to the\n"
                "    FID Inception network; REAL's statistics are cached."
                if metric.needs in ("features", "both") else "")
    examples = metric.examples or (f"medsyn eval {metric.name} real/ fake/",
                                   f"medsyn eval {metric.name} real/ fake/ --json")
    command.__doc__ = f"""{metric.summary}

    Each side is {_SIDE_HELP}. When FAKE's images share one square size and REAL's do not,
    REAL is first brought to FAKE's size and channels through the training data pipeline (or to
    --run's settings), as the papers compare: one line on stderr says so; --real-as-is turns it
    off.{features} See docs/metrics.md for the details.

    Examples:

{chr(10).join(" " * 8 + e for e in examples)}
    """
    return command


def register_metric_commands(app: typer.Typer) -> None:
    """One command per registered metric: REAL FAKE metrics share one form, others bring their own."""
    from medsyn_cli.metrics.registry import all_metrics

    metrics = list(all_metrics().values())
    comparable = [m for m in metrics if m.compute is not None]
    for metric in metrics:
        if metric.command is not None:
            app.command(metric.name, no_args_is_help=True)(metric.command_function())
        else:
            app.command(metric.name)(_metric_command(metric, comparable))


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
    from medsyn_cli.metrics.splits import held_out_cases

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
    held_out = held_out_cases(dataset, held_cases)
    fakes = []
    if "synthetic" in wanted:
        for spec, lab in ((synthetic, label), (synthetic_normal, 1 - label)):
            if spec is not None:
                images, cases = clf.load_synthetic(spec, res, held_out)
                fakes.append((images, lab, cases))
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
    dropped = result["arms"].get("synthetic", {}).get("synthetic_dropped", [])
    if any(dropped):
        lines.append(f"synthetic images made from a seed's validation cases, left out of its training: "
                     f"{', '.join(map(str, dropped))} (per seed)")
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


def build_eval_app() -> typer.Typer:
    """A fresh ``eval`` group (each root app gets its own, so commands are never added twice)."""
    app = typer.Typer(
        help="Evaluate synthetic images: FID, KID, precision/recall, classification, embeddings, edges.\n\n"
             "Examples:\n\n    medsyn eval fid ./covid-ct fake/ --json\n"
             "    medsyn sample runs/dcgan-64 --n 500 --out fake/ --json | medsyn eval kid ./covid-ct -\n"
             "    medsyn eval edges ./covid-ct fake/\n",
        no_args_is_help=True,
        context_settings=CONTEXT,
    )
    register_metric_commands(app)
    app.command("embed")(embed)
    return app


def register(app: typer.Typer) -> None:
    app.add_typer(build_eval_app(), name="eval")
