"""Throwaway models for the trainer's tests (registered in a fixture, unregistered after), and the
tests of the batch sampler and the model contract (how the trainer calls a model). Other test_train*/test_resume* files import the helpers from here."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from medsyn_cli.data.types import ImageSet, TwoDomainSet
from medsyn_cli.hookspecs import hookimpl
from medsyn_cli.model import GANModel
from medsyn_cli.nn.losses import bce_fake, bce_real
from medsyn_cli.plugins import pm
from medsyn_cli.registry import ModelSpec
from medsyn_cli.training.sampler import EpochSampler

RES = 16


@dataclass
class TinyConfig:
    latent_dim: int = 8
    lr: float = 1e-3
    nan_at: int = -1  # the step index (0-based) whose losses become NaN
    signal_at: int = -1  # the step index (0-based) during which the process sends itself SIGINT
    ema: bool = False
    betas: tuple[float, float] = (0.5, 0.999)  # a tuple setting: config.json records it as a list


class TinyGAN(GANModel):
    """A linear generator and discriminator: enough to exercise every part of the loop quickly."""

    def __init__(self, config: TinyConfig, res: int, channels: int):
        super().__init__(config, res, channels)
        self.wants_ema = config.ema
        pixels = channels * res * res
        generator = nn.Sequential(nn.Linear(config.latent_dim, pixels), nn.Tanh(),
                                  nn.Unflatten(1, (channels, res, res)))
        discriminator = nn.Sequential(nn.Flatten(), nn.Linear(pixels, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
        self.networks = {"generator": generator, "discriminator": discriminator}
        self.optimizers = {k: torch.optim.Adam(v.parameters(), lr=config.lr, betas=(0.5, 0.999))
                           for k, v in self.networks.items()}
        self.epochs_ended: list[int] = []
        self.epochs: list[int] = []  # the epoch train_step received with each step
        self.seen: list[torch.Tensor] = []  # the batches train_step received, for the sampler tests

    def train_step(self, batch, step, epoch=0):  # TinyTranslator keeps the older (batch, step) contract
        self.epochs.append(epoch)
        G, D = self.networks["generator"], self.networks["discriminator"]
        real = batch["image"]
        self.seen.append(real.clone())
        z = torch.randn(real.shape[0], self.config.latent_dim, device=self.device)
        with self.autocast():
            fake = G(z)
            loss_d = bce_real(D(real)) + bce_fake(D(fake.detach()))
        if step == self.config.nan_at:
            loss_d = loss_d * float("nan")  # a real blow-up: the NaN reaches the weights
        self.optimize("discriminator", loss_d)
        with self.autocast():
            loss_g = bce_real(D(fake))
        self.optimize("generator", loss_g)
        if step == self.config.signal_at:  # as if Ctrl-C were pressed in the middle of this step
            import signal

            signal.raise_signal(signal.SIGINT)
        # Detached tensors (the trainer reads them at log steps); TinyTranslator returns floats.
        return {"loss_d": self.wrap(loss_d.detach()), "loss_g": self.wrap(loss_g.detach())}

    @staticmethod
    def wrap(loss):
        """A test may replace this to follow what the trainer does with the returned tensors."""
        return loss

    @torch.no_grad()
    def sample(self, n, generator=None):
        z = torch.randn(n, self.config.latent_dim, generator=generator)
        return self.networks["generator"](z.to(self.device))

    def on_epoch_end(self, epoch):
        self.epochs_ended.append(epoch)


class TinyTranslator(GANModel):
    """normal -> tumor with an attention map; checks the batch contract on every step."""

    task = "translation"
    inference_networks = ("to_tumor",)

    def __init__(self, config: TinyConfig, res: int, channels: int):
        super().__init__(config, res, channels)
        self.networks = {"to_tumor": nn.Conv2d(channels, channels + 1, 3, padding=1),
                         "critic": nn.Sequential(nn.Flatten(), nn.Linear(channels * res * res, 1))}
        self.optimizers = {k: torch.optim.Adam(v.parameters(), lr=config.lr) for k, v in self.networks.items()}
        self.batches: list[dict] = []

    def translate(self, x, to):
        out = self.networks["to_tumor"](x)
        return torch.tanh(out[:, :-1]), torch.sigmoid(out[:, -1:])

    def train_step(self, batch, step):
        self.batches.append({k: v.clone() for k, v in batch.items()})
        y, _ = self.translate(batch["normal"], "tumor")
        critic = self.networks["critic"]
        loss_c = bce_real(critic(batch["tumor"])) + bce_fake(critic(y.detach()))
        self.optimize("critic", loss_c)
        loss_t = bce_real(critic(y)) + (y - batch["normal"]).abs().mean()
        self.optimize("to_tumor", loss_t)
        return {"loss_c": loss_c.item(), "loss_t": loss_t.item()}  # the older contract: floats


class TinyPlugin:
    @hookimpl
    def register_models(self, register):
        common = dict(config_cls=TinyConfig, citation="none", resolutions=(RES, 2 * RES), channels=(1, 3),
                      default_batch_size=4)
        register(ModelSpec(name="tiny-gan", task="unconditional", summary="test model",
                           factory=lambda c, r, ch: TinyGAN(c, r, ch), **common))
        register(ModelSpec(name="tiny-translator", task="translation", summary="test model",
                           factory=lambda c, r, ch: TinyTranslator(c, r, ch), **common))


@pytest.fixture
def tiny_models():
    plugin = TinyPlugin()
    pm.register(plugin, name="tiny-test-models")
    try:
        yield plugin
    finally:
        pm.unregister(name="tiny-test-models")


def random_images(n: int, res: int = RES, channels: int = 1, seed: int = 0) -> ImageSet:
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, channels, res, res, generator=g) * 2 - 1
    # Pixel [0,0,0] encodes the index so tests can see which images made a batch.
    images[:, 0, 0, 0] = torch.arange(n, dtype=torch.float32) / 1000
    return ImageSet(images=images, sources=[f"random#{i}" for i in range(n)], intensity={"kind": "uint8"})


def two_domains(n_normal: int, n_tumor: int, res: int = RES) -> TwoDomainSet:
    tumor = random_images(n_tumor, res, seed=1)
    tumor.masks = (torch.rand(n_tumor, 1, res, res, generator=torch.Generator().manual_seed(2)) > 0.7).float()
    tumor.has_mask = torch.arange(n_tumor) % 2 == 0
    return TwoDomainSet(normal=random_images(n_normal, res), tumor=tumor)


def train(out, data, model="tiny-gan", **flags):
    """Resolve flags like the CLI does and run the trainer in this process on ``data``."""
    from medsyn_cli.training.device import resolve_device
    from medsyn_cli.training.distributed import DistContext
    from medsyn_cli.training.plan import TrainFlags, resolve_plan
    from medsyn_cli.training.trainer import Trainer

    flags.setdefault("res", data.res)
    flags.setdefault("device", "cpu")
    plan = resolve_plan(TrainFlags(model=model, out=str(out), **flags))
    trainer = Trainer(plan, DistContext(), resolve_device(plan.settings.device), data)
    return trainer.run(), trainer.model


# -- the sampler -----------------------------------------------------------------------------------
def test_each_epoch_is_a_new_permutation_with_the_last_partial_batch_dropped():
    s = EpochSampler(10, 3, seed=5)
    assert s.batches_per_epoch == 3
    epoch0 = torch.cat([s.indices(k) for k in range(3)])
    epoch1 = torch.cat([s.indices(k) for k in range(3, 6)])
    assert len(set(epoch0.tolist())) == 9 and len(set(epoch1.tolist())) == 9
    assert not torch.equal(s.permutation(0), s.permutation(1))


def test_batches_depend_only_on_seed_and_step():
    a, b = EpochSampler(50, 4, seed=1), EpochSampler(50, 4, seed=1)
    for k in (0, 7, 12, 30):  # any order, any start: what resume relies on
        assert torch.equal(a.indices(k), b.indices(k))
    assert not torch.equal(a.indices(3), EpochSampler(50, 4, seed=2).indices(3))


def test_rank_shards_are_disjoint_strided_parts_of_the_global_batch():
    whole = EpochSampler(40, 8, seed=3)
    shards = [EpochSampler(40, 8, seed=3, rank=r, world=2) for r in range(2)]
    for k in range(6):
        parts = [s.indices(k) for s in shards]
        assert len(parts[0]) == len(parts[1]) == 4
        assert torch.equal(parts[0], whole.indices(k)[0::2]) and torch.equal(parts[1], whole.indices(k)[1::2])
        assert not set(parts[0].tolist()) & set(parts[1].tolist())


def test_tiny_models_train_through_the_real_trainer(tiny_models, tmp_path):
    result, model = train(tmp_path / "run", random_images(12), steps=4, batch_size=4)
    assert result.exit_code == 0 and result.step == 4
    # 12 images, batch 4: 3 steps per epoch, so epoch 0 ended after step 3.
    assert model.epochs_ended == [0]
    assert model.epochs == [0, 0, 0, 1]  # train_step is told the epoch: no counter in the model
    # Every image of epoch 0 was seen exactly once (pixel [0,0,0] holds the index).
    first_epoch = torch.cat(model.seen[:3])[:, 0, 0, 0].mul(1000).round().long()
    assert sorted(first_epoch.tolist()) == list(range(12))
    assert dataclasses.asdict(model.config)["lr"] == 1e-3


def test_step_function_passes_the_epoch_to_either_contract():
    from medsyn_cli.model import step_function

    calls = []

    class Old(GANModel):
        def train_step(self, batch, step):
            calls.append(("old", step))

    class New(GANModel):
        def train_step(self, batch, step, epoch=0):
            calls.append(("new", step, epoch))

    class KeywordOnly(GANModel):
        def train_step(self, batch, step, *, epoch=0):
            calls.append(("kw", step, epoch))

    for cls in (Old, New, KeywordOnly):
        step_function(cls(TinyConfig(), RES, 1))({}, 7, 2)
    assert calls == [("old", 7), ("new", 7, 2), ("kw", 7, 2)]


def test_data_of_the_other_task_is_refused(tiny_models, tmp_path):
    from medsyn_cli.errors import InputError

    with pytest.raises(InputError, match="a translation model needs two domains"):
        train(tmp_path / "a", random_images(8), model="tiny-translator", steps=1, batch_size=4)
    with pytest.raises(InputError, match="an unconditional model needs one folder"):
        train(tmp_path / "b", two_domains(8, 8), model="tiny-gan", steps=1, batch_size=4)
    with pytest.raises(InputError, match="data is 1x32x32, the run wants 1x16x16"):
        train(tmp_path / "c", random_images(8, res=2 * RES), steps=1, batch_size=4, res=RES)


def test_translation_batches_follow_the_contract(tiny_models, tmp_path):
    result, model = train(tmp_path / "run", two_domains(8, 5), model="tiny-translator", steps=3, batch_size=4)
    assert result.exit_code == 0
    for batch in model.batches:
        assert set(batch) == {"normal", "tumor", "tumor_mask", "tumor_has_mask"}
        assert batch["normal"].shape == batch["tumor"].shape == (4, 1, RES, RES)
        assert batch["tumor_mask"].shape == (4, 1, RES, RES) and batch["tumor_has_mask"].dtype == torch.bool
        assert set(batch["tumor_mask"].unique().tolist()) <= {0.0, 1.0}
    assert (tmp_path / "run" / "samples" / "step-000003.png").exists()  # the input|output|attention grid


def test_wants_ema_follows_the_config_unless_the_model_answers_outright():
    @dataclass
    class NoEma:
        latent_dim: int = 8

    assert GANModel(TinyConfig(ema=True), 8, 1).wants_ema
    assert not GANModel(TinyConfig(), 8, 1).wants_ema
    assert not GANModel(NoEma(), 8, 1).wants_ema  # a config without the setting: no average

    class Always(GANModel):
        wants_ema = True  # a class attribute replaces the property

    assert Always(NoEma(), 8, 1).wants_ema
    model = GANModel(TinyConfig(ema=True), 8, 1)
    model.wants_ema = False  # an instance's answer wins over its config
    assert not model.wants_ema
