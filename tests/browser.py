"""A headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``):
no extra Python packages, no port. Used by the report tests to load a page from disk, see every
request it makes, check its images and take a screenshot.

Chromium reads protocol messages on fd 3 and writes on fd 4, each a JSON object ended by a NUL byte.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars")


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    def __init__(self, executable: str, *, timeout: float = 60.0):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="medsyn-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire_fds() -> None:  # in the child: the protocol pipes become fds 3 and 4
            high_r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD_CLOEXEC, 10)  # out of the way of 3 and 4 first
            high_w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD_CLOEXEC, 10)
            os.dup2(high_r, 3)  # dup2 makes 3 and 4 inheritable; everything else Python opened is not
            os.dup2(high_w, 4)

        # Chromium's own chatter goes to a file: a pipe nobody reads would fill up and stall it.
        self.stderr_path = Path(self.profile) / "stderr.log"
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr,
            preexec_fn=wire_fds, close_fds=False)  # close_fds would close 3 and 4 again
        os.close(to_child_r)
        os.close(from_child_w)
        self._buf = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    # -- protocol --------------------------------------------------------------------------------
    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("chromium did not answer in time")
            ready, _, _ = select.select([self._from_child], [], [], left)
            if ready:
                chunk = os.read(self._from_child, 1 << 20)
                if not chunk:
                    err = self.stderr_path.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"chromium closed the protocol pipe; its stderr ends: {err}")
                self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict[str, Any]:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, session: str | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        for i, ev in enumerate(self.events):
            if ev.get("method") == method and (session is None or ev.get("sessionId") == session):
                return self.events.pop(i)
        while True:
            ev = self._read_message(deadline)
            if ev.get("method") == method and (session is None or ev.get("sessionId") == session):
                return ev
            self.events.append(ev)

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        self._stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


CHECK_IMAGES = """
(async () => {
  const imgs = [...document.images];
  await Promise.all(imgs.map(i => i.decode().catch(() => null)));
  return imgs.map(i => ({alt: i.alt, scheme: i.src.split(':')[0], width: i.naturalWidth,
                         height: i.naturalHeight, complete: i.complete}));
})()
"""


def inspect_page(executable: str, page: Path, screenshot: Path, *, width: int = 1200,
                 max_height: int = 6000) -> dict[str, Any]:
    """Load ``page`` from disk; return its requests, images, JS errors, where each section lies
    (id -> [top, bottom] in CSS pixels) and the full-page screenshot's path."""
    url = page.resolve().as_uri()
    with Browser(executable) as b:
        target = b.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = b.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Network", "Runtime", "Log"):
            b.send(f"{domain}.enable", session=session)
        b.send("Emulation.setDeviceMetricsOverride",
               {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=session)
        b.send("Page.navigate", {"url": url}, session=session)
        b.wait_event("Page.loadEventFired", session=session)
        images = b.send("Runtime.evaluate", {"expression": CHECK_IMAGES, "awaitPromise": True,
                                             "returnByValue": True}, session=session)["result"]["value"]
        title = b.send("Runtime.evaluate", {"expression": "document.title", "returnByValue": True},
                       session=session)["result"]["value"]
        slider = b.send("Runtime.evaluate", {"expression": (
            "(() => { const s = document.querySelector('.slider.js input');"
            " return s ? {max: Number(s.max), shown: document.querySelectorAll('.grids figure.current').length}"
            " : null; })()"), "returnByValue": True}, session=session)["result"]["value"]
        sections = b.send("Runtime.evaluate", {"expression": (
            "Object.fromEntries([...document.querySelectorAll('section[id]')].map("
            "s => [s.id, [s.offsetTop, s.offsetTop + s.offsetHeight]]))"), "returnByValue": True},
            session=session)["result"]["value"]
        metrics = b.send("Page.getLayoutMetrics", session=session)
        height = int(min(max_height, metrics.get("cssContentSize", metrics.get("contentSize"))["height"]))
        b.send("Emulation.setDeviceMetricsOverride",
               {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=session)
        shot = b.send("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
        screenshot.write_bytes(base64.b64decode(shot))
        ours = [ev for ev in b.events if ev.get("sessionId") == session]
        requests = [ev["params"]["request"]["url"] for ev in ours if ev.get("method") == "Network.requestWillBeSent"]
        errors = [ev["params"] for ev in ours if ev.get("method") == "Runtime.exceptionThrown"]
        errors += [ev["params"]["entry"] for ev in ours if ev.get("method") == "Log.entryAdded"
                   and ev["params"]["entry"].get("level") == "error"]
    return {"url": url, "title": title, "images": images, "requests": requests, "errors": errors,
            "slider": slider, "sections": sections, "screenshot": screenshot, "height": height}
