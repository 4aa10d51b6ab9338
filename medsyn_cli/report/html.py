"""HTML building blocks for the report page: escaping, embedded images, tables, the page shell.

Everything the page needs is inside it: images are ``data:`` URIs, the CSS and the one small script
(the sample-grid slider) are inline, and a Content-Security-Policy forbids fetching anything else,
so a section that slipped in an outside address would show a broken image instead of calling out.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any, Iterable

import numpy as np

#: Only inline styles and scripts and data: images; no request can leave the page.
CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
       "base-uri 'none'; form-action 'none'")


def escape(value: Any) -> str:
    return html.escape(str(value), quote=True)


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def img(data: bytes, alt: str, *, cls: str = "", mime: str = "image/png", title: str = "") -> str:
    """An ``<img>`` carrying its bytes; ``alt`` says what it shows when it cannot be shown."""
    attrs = f' class="{escape(cls)}"' if cls else ""
    attrs += f' title="{escape(title)}"' if title else ""
    return f'<img src="{data_uri(data, mime)}" alt="{escape(alt)}"{attrs}>'


def png_bytes(array: np.ndarray) -> bytes:
    """An (H, W) or (H, W, C) uint8 array (C = 1 or 3) as PNG bytes."""
    from PIL import Image

    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG")
    return buf.getvalue()


def table(rows: Iterable[tuple[Any, Any]], *, cls: str = "kv") -> str:
    """A two-column table of (name, value); values are escaped, lists and dicts shown compactly."""
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(_plain(v))}</td></tr>" for k, v in rows)
    return f'<table class="{cls}">{body}</table>'


def _plain(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_plain(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(v) for v in value)
    return "—" if value is None else str(value)


def note(text: str, *, cls: str = "note") -> str:
    return f'<p class="{cls}">{escape(text)}</p>'


STYLE = """
:root { --fg:#1d232a; --muted:#5b6570; --line:#d9dee3; --accent:#1f6feb; --bg:#fff; --soft:#f5f7f9; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       background: var(--bg); margin: 0 auto; max-width: 1100px; padding: 24px 28px 60px; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.2em; margin: 34px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
.sub { color: var(--muted); margin: 0 0 14px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: .85em; background: var(--soft);
         border: 1px solid var(--line); margin-right: 6px; }
.badge.done { background: #e6f4ea; border-color: #a8d5b5; } .badge.live { background: #fff4e0; border-color: #f0c987; }
nav a { margin-right: 12px; color: var(--accent); text-decoration: none; font-size: .92em; }
table.kv { border-collapse: collapse; margin: 6px 0 12px; font-size: .92em; }
table.kv th { text-align: left; font-weight: 600; padding: 2px 14px 2px 0; vertical-align: top; white-space: nowrap; }
table.kv td { padding: 2px 0; font-family: ui-monospace, Menlo, Consolas, monospace; word-break: break-word; }
.cols { display: flex; flex-wrap: wrap; gap: 0 40px; } .cols > div { min-width: 300px; flex: 1; }
h3 { font-size: 1em; margin: 14px 0 4px; color: var(--muted); }
img.plot { max-width: 100%; height: auto; border: 1px solid var(--line); }
.note { color: var(--muted); font-size: .92em; } .warn { color: #9a3412; }
pre { background: var(--soft); border: 1px solid var(--line); padding: 10px 12px; overflow-x: auto; font-size: .85em; }
.grids figure { margin: 0 10px 10px 0; display: inline-block; vertical-align: top; }
.grids figure img { width: 220px; image-rendering: pixelated; border: 1px solid var(--line); }
.grids figcaption { font-size: .85em; color: var(--muted); }
.grids.js figure { display: none; } .grids.js figure.current { display: block; }
.grids.js figure img { width: auto; height: 540px; max-width: 100%; object-fit: contain; }
.slider { display: none; align-items: center; gap: 12px; margin: 6px 0 10px; }
.slider input { width: min(560px, 70%); }
.slider.js { display: flex; }
table.triplets { border-collapse: collapse; } table.triplets th { font-weight: 600; font-size: .85em; padding: 4px; }
table.triplets td { padding: 3px; text-align: center; font-family: ui-monospace, monospace; font-size: .9em; }
table.triplets img { width: 128px; image-rendering: pixelated; display: block; }
"""

#: The sample-grid slider: without JavaScript the grids stay a strip of thumbnails.
SCRIPT = """
for (const box of document.querySelectorAll('.grids[data-slider]')) {
  const figs = box.querySelectorAll('figure');
  const bar = document.getElementById(box.dataset.slider);
  if (!figs.length || !bar) continue;
  const input = bar.querySelector('input'), label = bar.querySelector('output');
  input.max = figs.length - 1; input.value = figs.length - 1;
  const show = (i) => { figs.forEach((f, j) => f.classList.toggle('current', j === i));
                        label.textContent = figs[i].dataset.label; };
  input.addEventListener('input', () => show(Number(input.value)));
  box.classList.add('js'); bar.classList.add('js'); show(figs.length - 1);
}
"""


def page(title: str, header: str, sections: list[tuple[str, str, str]]) -> str:
    """The whole document; ``sections`` are (anchor id, heading, body html)."""
    nav = " ".join(f'<a href="#{escape(sid)}">{escape(head)}</a>' for sid, head, _ in sections)
    body = "".join(f'<section id="{escape(sid)}"><h2>{escape(head)}</h2>{html_body}</section>'
                   for sid, head, html_body in sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"{header}<nav>{nav}</nav>{body}<script>{SCRIPT}</script></body></html>\n"
    )
