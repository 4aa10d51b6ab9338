"""The sections of the report page: the built-in ones, then those plugins add.

A section is ``(id, heading, html)``. A plugin adds one through ``register_report_sections``:
``register(title, render)`` with ``render(run) -> str | None`` (an HTML fragment, or None to leave
the section out for this run); ``run`` is a :class:`medsyn_cli.report.run.RunView`. A section that
raises is replaced by a one-line note and reported on stderr, so one plugin cannot break the page.
"""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

from medsyn_cli.report import figures
from medsyn_cli.report.commands import next_commands, train_command
from medsyn_cli.report.html import escape, img, note, png_bytes, table
from medsyn_cli.report.run import RunView, pick_evenly

Section = tuple[str, str, str]


@dataclass
class Options:
    max_grids: int = 20
    translate_n: int = 6
    device: str = "cpu"


# -- header and settings ---------------------------------------------------------------------------
def status_text(run: RunView) -> tuple[str, str]:
    """(badge class, words) for where the run stands."""
    total = run.total_steps
    of = f" of {total}" if total else ""
    if run.finished:
        return "done", f"finished at step {run.last_step}{of}"
    stopped = run.stopped_line
    if stopped:
        return "live", f"stopped at step {run.last_step}{of}: {stopped}"
    return "live", f"in progress (or stopped): step {run.last_step}{of} so far"


def header(run: RunView) -> str:
    cls, words = status_text(run)
    cfg = run.config
    created = cfg.get("created")
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(created)) if isinstance(created, (int, float)) else "?"
    res, ch = cfg.get("res"), cfg.get("channels", 1)
    return (f"<h1>{escape(run.model)} · {escape(run.name)}</h1>"
            f'<p class="sub"><span class="badge {cls}">{escape(words)}</span>'
            f'<span class="badge">{escape(run.task)}</span><span class="badge">{ch}×{res}×{res}</span>'
            f"started {escape(when)} · <code>{escape(run.dir)}</code> · report written "
            f"{escape(time.strftime('%Y-%m-%d %H:%M'))}</p>")


def settings_section(run: RunView, _opts: Options) -> Section:
    cfg = run.config
    t = dict(cfg.get("training", {}))
    data = cfg.get("data", {})
    last = run.loss_records()[-1] if run.loss_records() else {}
    seconds = last.get("seconds")
    progress = [("step", f"{run.last_step} / {run.total_steps or '?'}"), ("epoch", last.get("epoch")),
                ("training time", f"{seconds:.0f} s" if isinstance(seconds, (int, float)) else None),
                ("images/s (last)", last.get("images_per_s")),
                ("weights.safetensors", "yes" if run.weights else "not yet"),
                ("checkpoint", str(run.checkpoint.relative_to(run.dir)) if run.checkpoint else "none yet"),
                ("resumes", ", ".join(f"at step {r.get('step')}" for r in cfg.get("resumes", [])) or "none")]
    data_rows = [("path", data.get("path")), ("images", data.get("count")),
                 ("intensity", _intensity(data.get("intensity"))), ("fingerprint", data.get("fingerprint"))]
    body = ('<div class="cols"><div><h3>Progress</h3>' + table(progress) + "<h3>Data</h3>" + table(data_rows)
            + "<h3>Versions</h3>" + table(cfg.get("versions", {}).items()) + "</div><div><h3>Training</h3>"
            + table(t.items()) + "<h3>Model settings</h3>" + table(cfg.get("model_config", {}).items())
            + "</div></div>")
    return "settings", "Settings and data", body


def _intensity(value: Any) -> str:
    """The mapping's kind(s), not the per-file values (they can be thousands of numbers)."""
    if not isinstance(value, dict):
        return "—" if value is None else str(value)
    if "kind" in value:
        extra = {k: v for k, v in value.items()
                 if k not in ("kind", "values", "sources") and not isinstance(v, (list, dict))}
        return str(value["kind"]) + (f" ({', '.join(f'{k}={v}' for k, v in extra.items())})" if extra else "")
    return "; ".join(f"{k}: {_intensity(v)}" for k, v in value.items())


# -- curves ----------------------------------------------------------------------------------------
def loss_section(run: RunView, _opts: Options) -> Section:
    records = run.loss_records()
    png = figures.loss_curves(records) if records else None
    if png is None:
        return "losses", "Loss curves", note("no losses recorded yet (one record every --log-every steps)")
    return "losses", "Loss curves", (img(png, "loss curves", cls="plot")
                                     + note(f"{len(records)} records from stats.jsonl; faint: the mean over each "
                                            "logging interval, solid: smoothed."))


def best_fid(run: RunView) -> tuple[int, float] | None:
    """The run's own record of its best FID (a ``best`` entry in config.json or stats.jsonl, or the
    metadata of best.safetensors) when it has one, else the lowest score in stats.jsonl."""
    for source in (run.config.get("best"), *(r.get("best") for r in reversed(run.stats)),
                   safetensors_metadata(run.dir / "best.safetensors")):
        if not isinstance(source, dict):
            continue
        try:
            return int(source["step"]), float(source["fid"])
        except (KeyError, TypeError, ValueError):
            continue
    points = run.fid_records()
    return min(points, key=lambda p: p[1]) if points else None


def safetensors_metadata(path) -> dict[str, str] | None:
    """The string metadata of a safetensors file, read from its header alone (no tensors, no torch)."""
    try:
        with open(path, "rb") as fh:
            size = int.from_bytes(fh.read(8), "little")
            if not 0 < size < 100_000_000:
                return None
            header = json.loads(fh.read(size))
    except (OSError, ValueError):
        return None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return meta if isinstance(meta, dict) else None


def fid_section(run: RunView, _opts: Options) -> Section | None:
    points = run.fid_records()
    if not points:
        return None
    best = best_fid(run)
    body = img(figures.fid_curve(points, best), "FID against the training step", cls="plot")
    words = f"{len(points)} scores; best {best[1]:.3f} at step {best[0]}" if best else f"{len(points)} scores"
    if (run.dir / "best.safetensors").is_file():
        words += "; its weights are in best.safetensors"
    return "fid", "FID during training", body + note(words + ".")


def critic_section(run: RunView, _opts: Options) -> Section | None:
    """``--holdout``'s critic diagnostics, with FID on a second axis when the run scored it."""
    records = run.critic_records()
    if not records:
        return None
    last = records[-1]
    r_v = last.get("r_v")
    words = (f"{len(records)} records of {last.get('images', '?')} images each; at step {last['step']} train "
             f"{last['train']:.4g}, held-out {last['holdout']:.4g}, generated {last['fake']:.4g}, gap "
             f"{last['train'] - last['holdout']:.4g}, r_v {'—' if r_v is None else f'{r_v:.3f}'}. ")
    body = img(figures.critic_curve(records, run.fid_records()), "critic scores against the training step",
               cls="plot")
    return "critic", "Is the critic memorising? (--holdout)", body + note(words + figures.CRITIC_READING)


# -- samples ---------------------------------------------------------------------------------------
def grids_section(run: RunView, opts: Options) -> Section:
    title = "Translations over training" if run.task == "translation" else "Samples over training"
    if not run.grids:
        return "samples", title, note("no sample grids yet (one every --sample-every steps)")
    shown = pick_evenly(run.grids, opts.max_grids)
    figs = []
    for step, path in shown:
        try:
            data = path.read_bytes()
        except OSError as exc:
            figs.append(f"<figure>{note(f'step {step}: unreadable ({exc})', cls='warn')}</figure>")
            continue
        label = f"step {step}"
        figs.append(f'<figure data-label="{escape(label)}">{img(data, f"sample grid at step {step}")}'
                    f"<figcaption>{escape(label)}</figcaption></figure>")
    slider = ('<div class="slider" id="grid-slider"><input type="range" min="0" step="1" '
              'aria-label="training step"><output></output></div>')
    what = ("rows of input | output | attention (or |output − input|) on fixed normal images"
            if run.task == "translation" else "the same fixed noise at every grid")
    more = f", {len(shown)} of {len(run.grids)} shown (evenly spaced, --grids)" if len(shown) < len(run.grids) else ""
    return "samples", title, (slider + f'<div class="grids" data-slider="grid-slider">{"".join(figs)}</div>'
                              + note(f"{what}{more}; drag the slider to move through training."))


def translation_section(run: RunView, opts: Options) -> Section | None:
    if run.task != "translation":
        return None
    from medsyn_cli.report.translation import translation_triplets

    result = translation_triplets(run, n=opts.translate_n, device=opts.device)
    title = "Real slices: input, output, attention"
    if result.unavailable:
        return "translation", title, note(result.unavailable, cls="warn")
    third = "attention" if result.has_attention else "|output − input|"
    head = (f"<tr><th>input (tumor)</th><th>output (normal)</th><th>{third}</th><th>true mask</th>"
            "<th>Dice</th><th>soft Dice</th></tr>")
    rows = []
    for r in result.rows:
        mask = img(png_bytes(r.mask), "true tumor mask") if r.mask is not None else "no mask"
        score = f"{r.dice:.3f}" if r.dice is not None else "—"
        soft = f"{r.soft_dice:.3f}" if r.soft_dice is not None else "—"
        rows.append(f'<tr title="{escape(r.source)}"><td>{img(png_bytes(r.input), "input slice")}</td>'
                    f'<td>{img(png_bytes(r.output), "translated slice")}</td>'
                    f"<td>{img(png_bytes(r.third), third)}</td><td>{mask}</td><td>{score}</td><td>{soft}</td></tr>")
    mean, soft_mean = result.mean("dice"), result.mean("soft_dice")
    words = (f"{len(result.rows)} real tumor slices of the run's data translated to normal with "
             f"{result.weights} (step {result.step}). ")
    if result.has_attention:
        words += (f"Dice: the attention map above 0.5 against the true tumor mask, mean {mean:.3f}; soft Dice: "
                  f"the attention's values against the mask, without a threshold, mean {soft_mean:.3f}."
                  if mean is not None else "No slice has a true mask, so there is no Dice.")
    else:
        words += "This model gives no attention map, so there is no Dice."
    return "translation", title, f'<table class="triplets">{head}{"".join(rows)}</table>' + note(words)


def growth_section(run: RunView, opts: Options) -> Section | None:
    """Normal slices to tumor: where the model grows a tumor (attention) and what it changed (difference)."""
    if run.task != "translation":
        return None
    from medsyn_cli.report.translation import translation_triplets

    result = translation_triplets(run, n=opts.translate_n, device=opts.device, to="tumor")
    title = "Real normal slices to tumor: input, output, attention, difference"
    if result.unavailable:
        return "growth", title, note(result.unavailable, cls="warn")
    third = "attention" if result.has_attention else "|output − input|"
    head = f"<tr><th>input (normal)</th><th>output (tumor)</th><th>{third}</th><th>|output − input|</th></tr>"
    rows = [f'<tr title="{escape(r.source)}"><td>{img(png_bytes(r.input), "input slice")}</td>'
            f'<td>{img(png_bytes(r.output), "translated slice")}</td><td>{img(png_bytes(r.third), third)}</td>'
            f'<td>{img(png_bytes(r.difference), "difference")}</td></tr>' for r in result.rows]
    words = (f"{len(result.rows)} real normal slices of the run's data (from the larger half by brain area) "
             f"translated to tumor with {result.weights} (step {result.step}); the difference is black where "
             "the output is the input. Score held-out cases with `medsyn eval translation RUN --data TEST`.")
    return "growth", title, f'<table class="triplets">{head}{"".join(rows)}</table>' + note(words)


# -- reproduce and log -----------------------------------------------------------------------------
def commands_section(run: RunView, _opts: Options) -> Section:
    run_dir = str(run.config.get("out") or run.dir)
    train = train_command(run.config, run_dir)
    resumed = run.config.get("resumes") or []
    words = ("The run was resumed; with the same settings resume is exact on the CPU, so one uninterrupted "
             "run gives the same result." if resumed else "")
    body = (note("Train the same run again (same data, settings and seed):") + f"<pre>{escape(train)}</pre>"
            + (note(words) if words else "") + note("Use it:")
            + f"<pre>{escape(chr(10).join(next_commands(run.config, run_dir)))}</pre>")
    return "reproduce", "Reproduce", body


def log_section(run: RunView, _opts: Options) -> Section | None:
    if not run.log_tail:
        return None
    tail = run.log_tail[-30:]
    return "log", "Log", note(f"the last {len(tail)} lines of log.txt") + f"<pre>{escape(chr(10).join(tail))}</pre>"


BUILTIN: tuple[Callable[[RunView, Options], Section | None], ...] = (
    settings_section, loss_section, fid_section, critic_section, grids_section, translation_section, growth_section,
    commands_section,
)


# -- plugins ---------------------------------------------------------------------------------------
def plugin_sections(run: RunView) -> list[Section]:
    """Sections registered through ``register_report_sections``, each failure isolated."""
    from medsyn_cli.plugins import collect

    found = [(plugin_name, title, render) for plugin_name, (title, render) in
             collect("register_report_sections", lambda title, render: (str(title), render))]
    out = []
    for plugin_name, title, render in found:
        sid = "plugin-" + re.sub(r"[^a-z0-9]+", "-", f"{plugin_name}-{title}".lower()).strip("-")
        try:
            fragment = render(run)
        except Exception as exc:
            print(f"medsyn: report section {title!r} of plugin {plugin_name!r} failed: {exc}", file=sys.stderr)
            fragment = note(f"this section (plugin {plugin_name}) failed: {type(exc).__name__}: {exc}", cls="warn")
        if fragment is not None:
            out.append((sid, title, str(fragment)))
    return out


def all_sections(run: RunView, opts: Options) -> list[Section]:
    sections = [s for fn in BUILTIN if (s := fn(run, opts)) is not None]
    sections += plugin_sections(run)
    log = log_section(run, opts)
    return sections + ([log] if log else [])
