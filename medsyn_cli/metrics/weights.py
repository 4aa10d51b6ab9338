"""The FID Inception weights: find, download, verify by behaviour, import into the cache.

A file is accepted as the FID network by what it computes, not by its hash: the features it
produces for a fixed, analytically defined probe image must match reference values measured once
with pytorch-fid's weights. So the original ``pt_inception-2015-12-05-6726825d.pth`` (with ``fc``)
and re-saved copies without ``fc`` (such as ``fid-inception-pool3.pth``) are both accepted, and a
file holding torchvision's ImageNet Inception (same keys, other numbers) is refused.

Where the weights come from, first match wins: ``--weights PATH`` > ``MEDSYN_FID_WEIGHTS`` > a file
in ``cache_dir()/weights`` (the downloaded release file first, else the newest import) > a download
of pytorch-fid's release file (sha256 must start with ``6726825d``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medsyn_cli import paths
from medsyn_cli.errors import InputError, MedsynError
from medsyn_cli.fileio import atomic_path

RELEASE_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
               "pt_inception-2015-12-05-6726825d.pth")
RELEASE_NAME = "pt_inception-2015-12-05-6726825d.pth"
RELEASE_SHA256_PREFIX = "6726825d"
ENV_VAR = "MEDSYN_FID_WEIGHTS"

#: Pool3 features of the probe image (see :func:`probe_image`) under the FID weights, measured
#: once with pytorch-fid 0.3.0's network in float32 on CPU: features 0..7, their sum and L2 norm.
PROBE_FIRST = (0.072497487, 0.40390608, 0.022608982, 0.56459051, 0.44013673, 0.55913389,
               1.4874367, 0.0)
PROBE_SUM = 483.1626835
PROBE_NORM = 20.65939386
#: Relative tolerance: float rounding across CPUs/BLAS and BatchNorm folding is ~1e-6.
PROBE_RTOL = 1e-3


def weights_dir() -> Path:
    return paths.cache_dir() / "weights"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def cached_sha256(path: str | Path) -> str:
    """sha256 of ``path``, remembered by (path, size, mtime) so a repeat run does not re-read 90 MB."""
    p = Path(path).resolve()
    st = p.stat()
    memo_file = weights_dir() / "sha256-memo.json"
    key = f"{p}|{st.st_size}|{st.st_mtime_ns}"
    try:
        memo = json.loads(memo_file.read_text())
    except (OSError, ValueError):
        memo = {}
    if key in memo:
        return memo[key]
    digest = sha256_file(p)
    memo = {k: v for k, v in memo.items() if not k.startswith(f"{p}|")}
    memo[key] = digest
    try:
        paths.ensure(weights_dir())
        with atomic_path(memo_file) as tmp:
            tmp.write_text(json.dumps(memo, indent=1))
    except OSError:  # a read-only cache only costs the re-hash
        pass
    return digest


def require_file(path: Path, what: str = "weights file") -> None:
    """A folder or a missing path where a weights file is expected, said as such."""
    if path.is_dir():
        raise InputError(f"is a folder, not a {what}", path=path, hint="name the file itself")
    if not path.is_file():
        raise InputError(f"{what} not found", path=path)


def load_state_dict(path: str | Path) -> dict[str, Any]:
    """The tensors of a weights file (``torch.load(weights_only=True)``), without ``fc``."""
    import torch

    path = Path(path)
    require_file(path)
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols: a refusal below says enough
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated files, not a torch file at all
        raise InputError(f"not a PyTorch weights file ({type(exc).__name__})", path=path,
                         hint="expected pytorch-fid's pt_inception-2015-12-05-6726825d.pth") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise InputError("not a state dict of tensors", path=path)
    return {k: v for k, v in state.items() if not k.startswith(("fc.", "AuxLogits."))}


def probe_image():
    """A fixed 1x3x299x299 input in [-1, 1], defined by formulas so it is the same everywhere."""
    import torch

    coords = torch.arange(299, dtype=torch.float64)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    channels = [torch.sin(0.045 * (c + 1) * xx + 0.031 * yy) * torch.cos(0.017 * (xx - 2 * yy) + c)
                for c in range(3)]
    return torch.stack(channels)[None].float()


def probe_features(model) -> list[float]:
    """The pool3 features of the probe image under ``model`` (float64 list of 2048)."""
    import torch

    with torch.inference_mode():
        return model(probe_image()).double()[0].tolist()


def probe_matches(features: list[float]) -> tuple[bool, str]:
    """Whether probe features are those of the FID network; the reason when they are not."""
    total = math.fsum(features)
    norm = math.sqrt(math.fsum(f * f for f in features))
    checks = [("sum", total, PROBE_SUM), ("norm", norm, PROBE_NORM)]
    checks += [(f"feature[{i}]", features[i], ref) for i, ref in enumerate(PROBE_FIRST)]
    for name, got, ref in checks:
        if not math.isfinite(got) or abs(got - ref) > PROBE_RTOL * max(abs(ref), 0.05):
            return False, f"probe {name} is {got:.6g}, the FID network gives {ref:.6g}"
    return True, ""


def build_verified_model(path: str | Path):
    """Load ``path``, build the FID network (BatchNorm folded) and check it on the probe."""
    from medsyn_cli.metrics.inception import build_fid_inception

    state = load_state_dict(path)
    try:
        model = build_fid_inception(state)
    except RuntimeError as exc:  # missing/unexpected keys or wrong shapes
        first = str(exc).splitlines()[1:2] or [str(exc)]
        raise InputError("not the FID Inception network: " + first[0].strip()[:160], path=path,
                         hint="expected pytorch-fid's pt_inception-2015-12-05-6726825d.pth") from None
    ok, why = probe_matches(probe_features(model))
    if not ok:
        raise InputError(f"not the FID Inception network: {why}", path=path,
                         hint="expected pytorch-fid's pt_inception-2015-12-05-6726825d.pth, "
                              "not torchvision's ImageNet Inception")
    return model


@dataclass(frozen=True)
class WeightsInfo:
    path: Path
    sha256: str
    source: str  # "--weights", "MEDSYN_FID_WEIGHTS", "cache", "download"

    def as_dict(self) -> dict[str, str]:
        return {"path": str(self.path), "sha256": self.sha256, "source": self.source}


def cached_weight_files() -> list[Path]:
    """Weights in the cache, in the order they are preferred (release file, then newest import)."""
    d = weights_dir()
    if not d.is_dir():
        return []
    files = [p for p in d.glob("*.pth") if p.is_file()]
    files.sort(key=lambda p: (p.name != RELEASE_NAME, -p.stat().st_mtime_ns, p.name))
    return files


def resolve_weights(explicit: str | Path | None = None, *, allow_download: bool = True) -> WeightsInfo:
    """Which weights file to use (see the module docstring for the order)."""
    if explicit:
        p = Path(explicit).expanduser()
        require_file(p)
        return WeightsInfo(p.resolve(), cached_sha256(p), "--weights")
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise InputError(f"weights file named by {ENV_VAR} not found", path=p)
        return WeightsInfo(p.resolve(), cached_sha256(p), ENV_VAR)
    files = cached_weight_files()
    if files:
        return WeightsInfo(files[0].resolve(), cached_sha256(files[0]), "cache")
    if not allow_download:
        raise InputError("no FID Inception weights found",
                         hint=f"run `medsyn weights import FILE` or set {ENV_VAR}")
    dest = weights_dir() / RELEASE_NAME
    download(RELEASE_URL, dest, sha256_prefix=RELEASE_SHA256_PREFIX)
    return WeightsInfo(dest.resolve(), cached_sha256(dest), "download")


def download(url: str, dest: str | Path, *, sha256_prefix: str, timeout: float = 60.0) -> Path:
    """Fetch ``url`` to ``dest`` with a progress bar; keep it only if its sha256 starts right."""
    from medsyn_cli.console import log, progress

    dest = Path(dest)
    log(f"downloading {url} -> {dest}")
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, atomic_path(dest) as tmp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with progress() as bar, open(tmp, "wb") as out:
                task = bar.add_task("FID weights", total=total, info="")
                while block := resp.read(1 << 16):
                    out.write(block)
                    h.update(block)
                    bar.advance(task, len(block))
            digest = h.hexdigest()
            if not digest.startswith(sha256_prefix):
                raise MedsynError(f"downloaded file has sha256 {digest[:16]}..., expected "
                                  f"{sha256_prefix}...", path=url,
                                  hint="retry, or import a local copy with `medsyn weights import`")
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise MedsynError(f"download failed: {exc}", path=url,
                          hint=f"without internet, run `medsyn weights import FILE` or set {ENV_VAR}") from None
    return dest


def import_weights(src: str | Path, *, force: bool = False) -> WeightsInfo:
    """Verify ``src`` is the FID network, then copy it into the cache (the copy is what evals use)."""
    src = Path(src).expanduser()
    build_verified_model(src)
    dest = weights_dir() / src.name
    if dest.suffix != ".pth":
        dest = dest.with_suffix(".pth")
    if dest.exists() and not force:
        if sha256_file(dest) == sha256_file(src):
            return WeightsInfo(dest.resolve(), cached_sha256(dest), "cache")
        raise InputError("a different file of that name is already imported", path=dest,
                         hint="pass --force to replace it")
    paths.ensure(weights_dir())
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
    os.utime(dest)  # the newest import is preferred
    return WeightsInfo(dest.resolve(), cached_sha256(dest), "cache")


def describe_cached() -> list[dict[str, Any]]:
    """Every file in the weights cache with its size, sha256 and whether it is the FID network."""
    out = []
    for i, p in enumerate(cached_weight_files()):
        entry: dict[str, Any] = {"path": str(p), "name": p.name, "bytes": p.stat().st_size,
                                 "sha256": cached_sha256(p), "in_use": i == 0}
        try:
            build_verified_model(p)
            entry["valid"] = True
        except InputError as exc:
            entry["valid"] = False
            entry["reason"] = exc.message
        out.append(entry)
    return out
