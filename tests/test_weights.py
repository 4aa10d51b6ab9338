"""FID weights: behavioural verification, import into the cache, listing, resolution order, download."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import threading
from pathlib import Path

import pytest

from conftest import run_cli
from medsyn_cli.errors import InputError, MedsynError
from medsyn_cli.metrics import weights as W


@pytest.fixture(scope="module")
def fid_state():
    torch = pytest.importorskip("torch")
    from conftest import FID_WEIGHTS

    if not FID_WEIGHTS.is_file():
        pytest.skip("FID weights not found")
    return torch.load(FID_WEIGHTS, map_location="cpu", weights_only=True)


def test_probe_accepts_fid_weights_with_fc_and_the_fc_is_dropped(fid_state, tmp_path):
    import torch

    with_fc = dict(fid_state, **{"fc.weight": torch.zeros(1008, 2048), "fc.bias": torch.zeros(1008)})
    torch.save(with_fc, tmp_path / "with_fc.pth")
    assert set(W.load_state_dict(tmp_path / "with_fc.pth")) == set(fid_state)
    W.build_verified_model(tmp_path / "with_fc.pth")  # raises if the probe disagrees


def test_probe_reference_values_reject_small_deviations():
    ok_sum = W.PROBE_SUM
    features = list(W.PROBE_FIRST) + [0.0] * 2040
    features[-1] = ok_sum - sum(W.PROBE_FIRST)  # the right sum, but the norm is far off
    good, why = W.probe_matches(features)
    assert not good and "norm" in why
    scaled = [f * 1.01 for f in W.PROBE_FIRST]  # 1 % off: outside the 1e-3 tolerance
    assert not W.probe_matches(scaled + [0.0] * 2040)[0]


def test_probe_refuses_same_architecture_with_other_numbers(fid_state, tmp_path):
    import torch
    from torchvision.models.inception import Inception3

    # torchvision's Inception3 has the same keys and shapes as the FID network, different weights.
    other = Inception3(num_classes=1008, aux_logits=False, init_weights=True).state_dict()
    torch.save(other, tmp_path / "imagenet_like.pth")
    with pytest.raises(InputError, match="not the FID Inception network: probe"):
        W.build_verified_model(tmp_path / "imagenet_like.pth")


def test_non_weights_files_are_refused(tmp_path):
    import torch

    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(InputError, match="not a PyTorch weights file"):
        W.load_state_dict(tmp_path / "junk.pth")
    torch.save({"conv.weight": torch.zeros(2, 2)}, tmp_path / "small.pth")
    with pytest.raises(InputError, match="not the FID Inception network"):
        W.build_verified_model(tmp_path / "small.pth")


def test_import_ls_and_resolution_order_through_the_cli(fid_weights, tmp_path, monkeypatch):
    monkeypatch.delenv(W.ENV_VAR, raising=False)
    r = run_cli("weights", "import", fid_weights, "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    cached = Path(info["path"])
    assert cached.is_file() and cached.parent == W.weights_dir()
    assert info["sha256"] == hashlib.sha256(fid_weights.read_bytes()).hexdigest()
    r = run_cli("weights", "ls", "--json")
    entries = json.loads(r.stdout)["weights"]
    assert [(e["name"], e["valid"], e["in_use"]) for e in entries] == [(fid_weights.name, True, True)]
    # The cache copy is used when nothing else is named; the environment variable wins over it.
    assert W.resolve_weights().path == cached.resolve()
    monkeypatch.setenv(W.ENV_VAR, str(fid_weights))
    assert W.resolve_weights().source == W.ENV_VAR
    assert W.resolve_weights(fid_weights).source == "--weights"  # an explicit file wins over both


def test_import_refuses_a_file_that_is_not_the_fid_network(tmp_path):
    (tmp_path / "fake.pth").write_bytes(b"\x00" * 100)
    r = run_cli("weights", "import", tmp_path / "fake.pth")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "fake.pth" in r.stderr
    assert not W.weights_dir().exists() or not any(W.weights_dir().glob("*.pth"))


def test_no_weights_and_no_download_is_a_clear_error(monkeypatch):
    monkeypatch.delenv(W.ENV_VAR, raising=False)
    with pytest.raises(InputError, match="no FID Inception weights"):
        W.resolve_weights(allow_download=False)


@pytest.fixture
def http_file(tmp_path):
    """Serve a temp folder on 127.0.0.1; yields (folder, base URL)."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_checks_the_sha256_prefix(http_file, tmp_path):
    served, base = http_file
    payload = b"fid weights stand-in" * 1000
    (served / "w.pth").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    dest = tmp_path / "cache" / "w.pth"
    W.download(f"{base}/w.pth", dest, sha256_prefix=digest[:8])
    assert dest.read_bytes() == payload
    bad = tmp_path / "cache" / "bad.pth"
    with pytest.raises(MedsynError, match="sha256"):
        W.download(f"{base}/w.pth", bad, sha256_prefix="6726825d")
    assert not bad.exists() and not list(bad.parent.glob(".bad.pth.*"))  # nothing half-written left
    with pytest.raises(MedsynError, match="download failed"):
        W.download(f"{base}/missing.pth", tmp_path / "m.pth", sha256_prefix="0")


def test_download_from_a_file_url(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"abc")
    dest = tmp_path / "out.bin"
    W.download(src.as_uri(), dest, sha256_prefix=hashlib.sha256(b"abc").hexdigest()[:8])
    assert dest.read_bytes() == b"abc"


def test_resolve_downloads_the_release_file_when_nothing_is_local(monkeypatch, tmp_path):
    monkeypatch.delenv(W.ENV_VAR, raising=False)
    calls = []

    def fake_download(url, dest, *, sha256_prefix, timeout=60.0):
        calls.append((url, sha256_prefix))
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        Path(dest).write_bytes(b"x")
        return Path(dest)

    monkeypatch.setattr(W, "download", fake_download)
    info = W.resolve_weights()
    assert calls == [(W.RELEASE_URL, "6726825d")]
    assert info.source == "download" and info.path.name == W.RELEASE_NAME


def test_weights_default_records_and_lists(tmp_path):
    run = tmp_path / "runs" / "dcgan-64"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"format": "medsyn-run-1", "model": "dcgan"}))
    r = run_cli("weights", "default", "dcgan", run)
    assert r.returncode == 0, r.stderr
    r = run_cli("weights", "default", "--json")
    rows = {d["model"]: d for d in json.loads(r.stdout)["defaults"]}
    assert rows["dcgan"]["default"] == str(run.resolve()) and rows["dcgan"]["source"] == "explicit"
    r = run_cli("weights", "default", "dcgan", tmp_path / "missing")
    assert r.returncode == 2
