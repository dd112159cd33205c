"""Generation: one conformance suite over the four families (train, save, load, seeded sampling, exact resume,
conditional labels, grayscale and RGB), family-specific checks, and the CLI as a user runs it."""

import itertools
import json

import numpy as np
import pytest
import torch
from torch import nn

from conftest import cli, run_cli
from recgen import generate
from recgen.errors import RecgenError

FAMILIES = ["gan", "vae", "pixelcnn", "diffusion"]
# Tiny networks: a few training steps each, on 1 thread.
TINY = {"gan": dict(base=8, latent_dim=8), "vae": dict(base=8, latent_dim=4),
        "pixelcnn": dict(base=8, layers=2, levels=16), "diffusion": dict(base=8, steps=2)}
COMMON = dict(data="digits", limit=5, epochs=2, batch_size=12, val_fraction=0.2, threads=1)  # 3 steps/epoch
SIDE = {"pixelcnn": 12}  # pixel-by-pixel sampling: a smaller grayscale image keeps the suite fast (RGB stays 32)


def tiny(family, **kw):
    return {**COMMON, "model": family, **TINY[family], **kw}


@pytest.fixture(scope="module")
def rgb_npz(tmp_path_factory):
    """Three named classes of 32x32 RGB images: a coloured square on noise."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 60, (24, 32, 32, 3), dtype=np.uint8)
    y = np.arange(24) % 3
    for i in range(24):
        r, c = rng.integers(2, 18, 2)
        x[i, r:r + 12, c:c + 12, y[i]] = 230
    p = tmp_path_factory.mktemp("data") / "squares.npz"
    np.savez(p, x=x, y=y, classes=np.array(["red", "green", "blue"]))
    return p


@pytest.fixture(scope="module", params=FAMILIES)
def trained(request, tmp_path_factory):
    """(family, uninterrupted run, run stopped at step 4 and resumed)."""
    fam = request.param
    out = tmp_path_factory.mktemp(f"runs-{fam}")
    side = SIDE.get(fam, 0)
    full = generate.train(**tiny(fam, out=str(out), name="full", size=side))
    part = generate.train(**tiny(fam, out=str(out), name="part", max_steps=4, size=side))
    assert part.run.config["stopped"] == "max_steps"
    resumed = generate.train(resume=str(part.path))
    return fam, full, resumed


def test_run_directory_and_report(trained):
    fam, run, _ = trained
    p = run.path
    for f in ("config.yaml", "model.json", "metrics.csv", "report.html", "weights/last.safetensors",
              "weights/best.safetensors", "state/last.json", "plots/samples-epoch001.png",
              "plots/samples-epoch002.png", "eval-test.json"):
        assert (p / f).is_file(), f
    opts = run.run.config["options"]
    assert opts["model"] == fam and opts["epochs"] == 2 and opts["lr"] > 0  # family defaults resolved and recorded
    info = json.loads((p / "model.json").read_text())
    side = SIDE.get(fam, 28)
    assert info["family"] == fam and info["input_shape"] == [1, side, side] and info["args"]["cond"] == "class"
    html = (p / "report.html").read_text()
    assert "samples-epoch002.png" in html and "Training curves" in html
    rows = run.run.read_metrics()
    assert [r["step"] for r in rows] == [3, 6]


def test_load_and_seeded_sampling(trained):
    fam, run, _ = trained
    again = generate.load(run.path)
    x1, y1 = again.sample(6, seed=3)
    x2, y2 = generate.load(run.path).sample(6, seed=3)
    side = SIDE.get(fam, 28)
    assert x1.dtype == np.uint8 and x1.shape == (6, side, side, 1)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert np.array_equal(x1, run.sample(6, seed=3)[0])  # the object from train() and the reloaded one agree
    assert not np.array_equal(x1, again.sample(6, seed=4)[0])
    assert list(y1) == [0, 1, 2, 3, 4, 5]  # classes in turn when none is asked for


def test_bf16_sampling_stays_close_to_fp32(trained):
    fam, run, _ = trained
    x32, y32 = run.sample(4, seed=1)
    x16, y16 = run.sample(4, seed=1, precision="bf16")
    assert x16.dtype == np.uint8 and x16.shape == x32.shape and np.array_equal(y16, y32)
    if fam in ("gan", "vae"):  # one decoder pass: within a few uint8 levels on average
        assert np.abs(x16.astype(int) - x32.astype(int)).mean() < 2
    with pytest.raises(RecgenError, match="precision must be fp32 or bf16"):
        run.sample(2, precision="fp16")


def test_resume_is_exact(trained):
    fam, full, resumed = trained
    a, b = full.run.load_weights("last"), resumed.run.load_weights("last")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert [r["step"] for r in resumed.run.read_metrics()] == [3, 4, 6]


def test_conditional_samples_carry_labels(trained):
    _, run, _ = trained
    x, y = run.sample(3, class_="7", seed=0)
    assert list(y) == [7, 7, 7] and len(x) == 3
    x, y = run.sample(2, class_=2, seed=0)
    assert list(y) == [2, 2]
    with pytest.raises(RecgenError, match="unknown class 'seven'"):
        run.sample(2, class_="seven")
    with pytest.raises(RecgenError, match="steps must be at least 1, got 0"):
        run.sample(2, steps=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_rgb_32(family, rgb_npz, tmp_path):
    run = generate.train(**tiny(family, data=str(rgb_npz), epochs=1, max_steps=2, out=str(tmp_path)))
    assert run.input_shape == (3, 32, 32) and run.classes == ["red", "green", "blue"]
    x, y = run.sample(4, class_="green", seed=1)
    assert x.shape == (4, 32, 32, 3) and list(y) == [1] * 4
    assert np.array_equal(x, generate.load(run.path).sample(4, class_="green", seed=1)[0])


# --------------------------------------------------------------------------------------------- family specifics
def test_gan_health_flags_collapse_and_divergence():
    from recgen.generate.gan import health

    assert health(1.2, 0.5, 0.9) == []
    assert "mode collapse" in health(1.0, 0.5, 0.05)[0]
    assert "diverging" in health(0.01, 9.0, 0.8)[0]


def test_gan_health_names_a_class_that_collapsed_alone():
    from recgen.generate.gan import class_spread_ratios, health, spread_ratio

    g = torch.Generator().manual_seed(0)
    real, fake = torch.rand(40, 1, 8, 8, generator=g), torch.rand(40, 1, 8, 8, generator=g)
    labels = torch.arange(40) % 4
    fake[labels == 2] = fake[labels == 2][0]  # class 2: one image whatever the noise
    ratios = class_spread_ratios(fake, real, labels)
    assert ratios[2] == 0 and min(ratios[k] for k in (0, 1, 3)) > 0.8
    overall = spread_ratio(fake, real, labels)
    assert overall > 0.35  # the overall ratio alone would miss it
    problems = health(1.0, 0.5, overall, {"bag": ratios[2], "coat": ratios[0]})
    assert len(problems) == 1 and "1 class(es): bag (0.00x)" in problems[0] and "coat" not in problems[0]


def test_gan_validate_reports_a_collapsed_generator():
    from recgen.generate import gan
    from recgen.generate.api import GenerateConfig

    arch = gan.GANConfig(g_base=8, d_base=8, z_dim=8)
    mods = gan.build(arch)
    with torch.no_grad():  # every noise vector -> the same image
        mods["G"].fc.weight.zero_()
    val = (torch.rand(50, 1, 28, 28), torch.arange(50) % 10)
    task = gan.GANTask(mods, arch, GenerateConfig(model="gan"), val, [str(i) for i in range(10)], torch.device("cpu"))
    with pytest.warns(UserWarning, match="mode collapse"):
        m = task.validate(mods)
    assert m["gan_collapse"] == 1 and m["gan_spread_ratio"] < 0.35 and m["gan_min_class_spread"] < 0.35


@pytest.mark.parametrize("cond,channels", [("class", 1), ("none", 3), ("text", 1)])
def test_gan_fast_inference_matches_forward(cond, channels):
    from recgen.generate.gan import GANConfig, Generator

    torch.manual_seed(0)
    side = 28 if channels == 1 else 32
    G = Generator(GANConfig(channels=channels, height=side, width=side, cond=cond, g_base=8))
    for bn in (G.bn0, G.bn1):  # statistics and condition gains away from their initial values
        bn.bn.running_mean.normal_()
        bn.bn.running_var.uniform_(0.5, 2.0)
        if cond != "none":
            nn.init.normal_(bn.gain.weight, std=0.2)
            nn.init.normal_(bn.bias.weight, std=0.2)
    z = torch.randn(70, G.fc.in_features - (0 if cond == "none" else 64))
    c = {"class": torch.arange(70) % 10, "none": None,
         "text": nn.functional.normalize(torch.randn(70, 384), dim=-1)}[cond]
    with pytest.raises(RuntimeError, match="eval"):
        G.infer(z, c)
    G.eval()
    with torch.no_grad():
        ref = G(z, c)
    fast = G.infer(z, c, chunk=32)  # three chunks, the last one short
    assert fast.shape == ref.shape == (70, channels, side, side)
    assert torch.allclose(fast, ref, atol=1e-5)
    with torch.no_grad():  # an empty batch gives an empty batch of images, by either path
        assert G.infer(z[:0], None if c is None else c[:0]).shape == G(z[:0], None if c is None else c[:0]).shape \
            == (0, channels, side, side)


def test_gan_mode_seeking_pairs_two_noises_under_one_condition():
    """The generator step's second half repeats the first half's conditions, and the mode-seeking term rewards
    image distance per unit of noise distance (MSGAN): a generator that ignores its noise pays for it."""
    from recgen.generate import gan
    from recgen.generate.api import GenerateConfig, resolve
    from recgen.train import seeded

    arch = gan.GANConfig(g_base=8, d_base=8, z_dim=8)
    x, y = torch.rand(10, 1, 28, 28), torch.arange(10)
    seen = []
    for lam in (1.0, 0.0):
        mods = gan.build(arch)
        cfg = resolve(GenerateConfig(model="gan", mode_seeking=lam))
        task = gan.GANTask(mods, arch, cfg, None, [str(i) for i in range(10)], torch.device("cpu"))
        task.configure_optimizers(cfg, 10)
        conds = []
        mods["G"].register_forward_pre_hook(lambda m, a: conds.append(a[1].clone()))
        out = task.training_step((x, y), seeded(0))
        seen.append((out, conds))
    (on, conds_on), (off, conds_off) = seen
    assert on["mode_seeking"] > 0 and "mode_seeking" not in off
    assert torch.equal(conds_on[1], torch.cat([y[:5], y[:5]]))  # the generator step: pairs share a class
    assert torch.equal(conds_off[1], y)
    assert on["loss"] > on["d_loss"] + on["g_loss"]  # the term is in the generator's loss (1 / distance > 0)


@pytest.mark.parametrize("dilations", ["1", "2,4"])
def test_pixelcnn_is_causal_and_untrained_is_near_8_bits(dilations):
    from recgen.generate.pixelcnn import PixelCNN, PixelCNNConfig, evaluate, quantise

    torch.manual_seed(0)
    net = PixelCNN(PixelCNNConfig(hidden=8, layers=3, head=16, cond="none", dilations=dilations)).eval()
    assert net.rows_above == {"1": 6, "2,4": 10}[dilations]  # 1 (shift) + 3 (7x7 first layer) + sum of dilations
    x = torch.randint(0, 256, (1, 1, 28, 28))
    with torch.no_grad():
        base = net(x)
        y = x.clone()
        y[0, 0, 10, 12] = 255 - y[0, 0, 10, 12]
        changed = (net(y) - base).abs().amax(dim=(1, 2))[0] > 0  # (H, W)
        r = 20  # the rows above the receptive field change nothing: sampling crops them
        top = r - net.rows_above
        assert torch.allclose(net(x[:, :, top:r + 1])[..., -1, :], base[..., r, :], atol=1e-5)
    order = torch.arange(28 * 28).view(28, 28)
    assert not changed[order <= 10 * 28 + 12].any()  # nothing at or before the pixel in raster order
    assert changed[11, 12]
    imgs = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (20, 1, 28, 28))).float() / 255
    bpd = evaluate(net, imgs, torch.zeros(20, dtype=torch.long), lambda y, g: None)["bpd"]
    assert 7.5 < bpd < 8.5  # an untrained softmax over 256 levels is close to uniform: log2(256) = 8
    assert quantise(torch.tensor([0.0, 1.0]), 16).tolist() == [0, 15]


@pytest.mark.parametrize("guidance", [1.0, 3.0])
def test_pixelcnn_row_cached_sampler_matches_full_passes(guidance):
    """The sampler's per-row context + per-pixel horizontal stacks give the logits of full forward passes, so the
    same seed draws the same pixels as the slow reference below; guidance mixes conditional and null logits."""
    from recgen.generate.pixelcnn import PixelCNN, PixelCNNConfig, sample

    torch.manual_seed(0)
    cfg = PixelCNNConfig(height=9, width=7, hidden=8, layers=3, head=16, levels=16, dilations="1,2", cond_dropout=0.1)
    net = PixelCNN(cfg).eval()
    nn.init.normal_(net.embed.table.weight)  # a null token that differs from the class rows
    c = torch.tensor([0, 4, 9])
    fast = sample({"model": net}, cfg, c, 3, torch.Generator().manual_seed(5), guidance=guidance)
    g, q = torch.Generator().manual_seed(5), torch.zeros(3, 1, 9, 7, dtype=torch.long)
    with torch.no_grad():
        for r, col in itertools.product(range(9), range(7)):
            logits = net(q, c)[:, :, :, r, col]
            if guidance != 1.0:
                null = net(q, c, torch.ones(3, dtype=torch.bool))[:, :, :, r, col]
                logits = null + guidance * (logits - null)
            q[:, :, r, col] = torch.multinomial(logits.softmax(1).transpose(1, 2).flatten(0, 1), 1, generator=g).view(3, 1)
    assert torch.equal(fast, q.float() / 15)


def test_pixelcnn_trained_with_cond_dropout_samples_guided(tmp_path):
    run = generate.train(**tiny("pixelcnn", out=str(tmp_path), size=12, max_steps=2))
    assert run.arch.cond_dropout == 0.1 and run.guided  # new runs learn the null condition
    a, la = run.sample(4, guidance=3.0, seed=1)
    b, _ = run.sample(4, guidance=1.0, seed=1)
    assert a.shape == (4, 12, 12, 1) and la.tolist() == [0, 1, 2, 3]
    assert np.array_equal(a, run.sample(4, guidance=3.0, seed=1)[0]) and not np.array_equal(a, b)
    old = generate.train(**tiny("pixelcnn", out=str(tmp_path), size=12, max_steps=1, cond_dropout=0.0))
    assert not old.guided  # like runs written before cond_dropout: no null condition to guide against
    with pytest.raises(RecgenError, match="pixelcnn run trained with cond_dropout > 0.*without it"):
        old.sample(2, guidance=2.0)
    assert old.sample(2, seed=0)[0].shape == (2, 12, 12, 1)  # unguided by default


@pytest.mark.parametrize("trained", ["pixelcnn"], indirect=True)
def test_pixelcnn_reports_bits_per_dim(trained):
    fam, run, _ = trained
    m = json.loads((run.path / "eval-test.json").read_text())
    assert 0 < m["bpd"] < 4.5 and m["data"] == "quantised to 16 levels"  # log2(16) = 4 bits at chance
    assert "val_bpd" in run.run.read_metrics()[-1]


@pytest.mark.parametrize("trained", ["vae"], indirect=True)
def test_vae_elbo_interpolation_and_variations(trained):
    fam, run, _ = trained
    m = json.loads((run.path / "eval-test.json").read_text())
    assert {"elbo", "bpd", "recon_mse", "kl"} <= set(m) and 0 <= m["recon_mse"] < 1
    img = (np.random.default_rng(0).random((28, 28, 1)) * 255).astype(np.uint8)
    frames, y = run.interpolate(img, img[::-1], n=5, class_=3)
    assert frames.shape == (5, 28, 28, 1) and list(y) == [3] * 5
    rows, y = run.interpolate(n=4)  # one row per class between two noise draws
    assert rows.shape == (40, 28, 28, 1) and list(y[:8]) == [0] * 4 + [1] * 4
    x, y = run.sample(3, like=img, strength=0.3, seed=0)
    assert x.shape == (3, 28, 28, 1) and y is not None and len(set(y.tolist())) == 1  # the inferred class
    z = run.embed(x)
    assert z.shape == (3, 4) and run.decode(z, class_=int(y[0])).shape == (3, 28, 28, 1)


@pytest.mark.parametrize("trained", ["diffusion"], indirect=True)
def test_diffusion_samplers_guidance_and_sdedit(trained):
    fam, run, _ = trained
    for sampler in ("ddpm", "ddim", "dpm"):
        x, _ = run.sample(2, class_=1, sampler=sampler, steps=3, guidance=3.0, seed=0)
        assert x.shape == (2, 28, 28, 1)
        assert np.array_equal(x, run.sample(2, class_=1, sampler=sampler, steps=3, guidance=3.0, seed=0)[0])
    img = np.full((28, 28, 1), 200, np.uint8)
    near, _ = run.sample(2, like=img, strength=0.2, steps=10, seed=0)
    far, _ = run.sample(2, like=img, strength=1.0, steps=10, seed=0)
    assert np.abs(near.astype(float) - 200).mean() < np.abs(far.astype(float) - 200).mean()
    with pytest.raises(RecgenError, match="sampler must be one of"):
        run.sample(2, sampler="euler")


def test_ddim_inversion_retraces_the_sampler():
    """With a denoiser whose prediction does not depend on x (here: always zero noise), DDIM inversion and DDIM
    sampling are exact inverses at every strength: any off-by-one in the reversed schedule breaks the round trip."""
    from recgen.generate import diffusion
    from recgen.train import seeded

    class Zero(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, x, t, c=None, drop=None, aug=None):
            return torch.zeros_like(x)

    cfg, m = diffusion.DiffusionConfig(cond="none", height=8, width=8), {"model": Zero()}
    x = torch.rand(3, 1, 8, 8) * 0.8 + 0.1
    for steps, strength in [(10, 1.0), (20, 0.6)]:
        z = diffusion.invert(m, cfg, x, None, steps, strength)
        back = diffusion.sample(m, cfg, None, 3, seeded(0), "ddim", steps, 1.0, latent=z, strength=strength)
        assert torch.allclose(back, x, atol=1e-4), (steps, strength)


@pytest.mark.parametrize("trained", ["diffusion"], indirect=True)
def test_diffusion_interpolates_between_images_and_noise(trained):
    fam, run, _ = trained
    rng = np.random.default_rng(0)
    a, b = ((rng.random((28, 28, 1)) * 255).astype(np.uint8) for _ in range(2))
    frames, y = run.interpolate(a, b, n=5, class_=3)
    assert frames.shape == (5, 28, 28, 1) and list(y) == [3] * 5
    assert np.array_equal(frames, run.interpolate(a, b, n=5, class_=3)[0])  # deterministic (DDIM, inverted ends)
    rows, y = run.interpolate(n=3, seed=1)  # one row per class between two noise draws
    assert rows.shape == (30, 28, 28, 1) and list(y[:6]) == [0] * 3 + [1] * 3


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpm"])
def test_samplers_stay_in_range_when_the_first_step_is_off(sampler):
    """A denoiser that is exact for mid-gray data inside the range it trained on (|x| <= 4) but 0.02 off everywhere.
    At the first step sqrt(abar) ~ 5e-5, so that error puts the x0 estimate hundreds of units out; a sampler that
    does not clip x0 then leaves the trained range and never comes back (DPM-Solver++ without thresholding: every
    pixel saturated)."""
    from recgen.generate import diffusion
    from recgen.train import seeded

    cfg = diffusion.DiffusionConfig(cond="none")
    abar = diffusion.make_scheduler(cfg).alphas_cumprod

    class Oracle(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x, t, c=None, drop=None):
            return x.clamp(-4, 4) / (1 - abar[t.long()]).sqrt()[:, None, None, None] + 0.02

    for steps in (10, 20):
        x = diffusion.sample({"model": Oracle()}, cfg, None, 4, seeded(0), sampler, steps, 1.0)
        assert (x - 0.5).abs().mean() < 0.01


def test_text_conditioning(rgb_npz, tmp_path):
    from recgen.generate.condition import class_prompts, embed_texts, nearest_class
    from recgen.data import FASHION_CLASSES

    # the held-out phrasings of the prompt file land on their class in MiniLM space (never trained on)
    held = class_prompts(FASHION_CLASSES, "heldout")
    flat = [p for ps in held for p in ps]
    truth = torch.tensor([k for k, ps in enumerate(held) for _ in ps])
    assert (nearest_class(embed_texts(flat), FASHION_CLASSES) == truth).float().mean() >= 0.8
    for fam in ("vae", "diffusion"):
        run = generate.train(**tiny(fam, data=str(rgb_npz), epochs=1, max_steps=2, out=str(tmp_path),
                                    text_conditional=True))
        assert run.arch.cond == "text"
        x, y = run.sample(2, prompt="something coloured green", seed=0)
        assert x.shape == (2, 32, 32, 3) and list(y) == [1, 1]
        assert np.array_equal(x, run.sample(2, prompt="something coloured green", seed=0)[0])
        x, y = run.sample(3, class_="blue", seed=0)  # a class name is a prompt too
        assert list(y) == [2, 2, 2]
        with pytest.raises(RecgenError, match="empty prompt"):
            run.sample(2, prompt="  ")


def test_text_head_puts_unseen_phrasings_on_their_class():
    """The text head, fitted on the training phrasings, reads held-out wording as its class; and phrasings of
    different classes give clearly different condition vectors (fed raw, unit-norm MiniLM embeddings spread by
    ~0.006 per entry and generators learned to ignore the text)."""
    from recgen.data import FASHION_CLASSES
    from recgen.generate.condition import Conditioner, fit_text_head, phrase_table

    torch.manual_seed(0)
    cond = Conditioner("text", 10, 64)
    fit_text_head({"m": cond}, phrase_table(FASHION_CLASSES, framed=True))
    held = phrase_table(FASHION_CLASSES, "heldout")  # (10, P, 384), never trained on
    probs = cond.class_probs(held.reshape(-1, held.shape[-1]))
    right = (probs.argmax(1) == torch.arange(10).repeat_interleave(held.shape[1])).float().mean()
    assert right >= 0.85
    out = cond(phrase_table(FASHION_CLASSES)[:, 0])  # one phrasing per class
    assert out.std(0).mean() > 0.05


def test_weights_of_the_old_text_map_are_refused_naming_the_file(tmp_path):
    from recgen.generate.condition import Conditioner
    from recgen.weights import load_module

    old = {"table.weight": torch.zeros(11, 8), "proj.1.weight": torch.zeros(8, 384), "null": torch.zeros(8)}
    with pytest.raises(RecgenError, match=r"best\.safetensors: this text-conditional run was trained by an earlier"):
        load_module(Conditioner("text", 10, 8), old, tmp_path / "best.safetensors")


def test_unconditional_run(tmp_path):
    run = generate.train(**tiny("gan", epochs=1, max_steps=2, out=str(tmp_path), class_conditional=False))
    x, y = run.sample(3, seed=0)
    assert y is None and x.shape == (3, 28, 28, 1)
    with pytest.raises(RecgenError, match="unconditional"):
        run.sample(2, class_=1)
    with pytest.raises(RecgenError, match="guidance.*needs a class- or text-conditional run"):
        run.sample(2, guidance=2.0)


# ---------------------------------------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def cli_runs(rgb_npz, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli")
    vae = generate.train(**tiny("vae", data=str(rgb_npz), epochs=1, max_steps=2, out=str(out)))
    unc = generate.train(**tiny("diffusion", data=str(rgb_npz), epochs=1, max_steps=1, out=str(out),
                                class_conditional=False))
    return out, vae.path, unc.path


def test_cli_train_and_sample(rgb_npz, tmp_path):
    r = run_cli("generate", "train", "--model", "gan", "--data", rgb_npz, "--epochs", "1", "--max-steps", "2",
                "--val-fraction", "0.25",
                "--batch-size", "8", "--base", "8", "--latent-dim", "8", "--threads", "1", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    run = tmp_path / "generate" / "gan-1"
    assert "report:" in r.stdout and (run / "report.html").is_file() and (run / "plots/interpolation.png").is_file()
    out = tmp_path / "s" / "boots.png"
    r = run_cli("generate", "sample", run, "--n", "5", "--class", "blue", "--seed", "2", "--out", out,
                "--per-image")
    assert r.returncode == 0, r.stderr
    z = np.load(out.with_suffix(".npz"))
    assert z["x"].shape == (5, 32, 32, 3) and z["x"].dtype == np.uint8 and z["y"].tolist() == [2] * 5
    assert list(z["classes"]) == ["red", "green", "blue"]
    assert len(list((tmp_path / "s" / "boots").glob("*-blue.png"))) == 5 and out.is_file()
    r = cli("generate", "sample", run, "--n", "5", "--class", "blue", "--seed", "2", "--out", tmp_path / "b.png")
    assert r.exit_code == 0 and np.array_equal(np.load(tmp_path / "b.npz")["x"], z["x"])  # same seed, same images
    r = cli("generate", "interpolate", run, "--n", "4", "--out", tmp_path / "i.png")
    assert r.exit_code == 0 and np.load(tmp_path / "i.npz")["x"].shape == (12, 32, 32, 3)
    r = cli("generate", "eval", run, "--no-judge", "--json")
    m = json.loads(r.stdout)["likelihood"]
    assert r.exit_code == 0 and m["split"] == "val" and 0 < m["spread_ratio"] < 10
    r = cli("generate", "eval", run, "--inception", tmp_path / "none.pth")  # Inception weights are never fetched
    assert r.exit_code == 2 and "none.pth: no Inception weights file" in r.output
    r = cli("generate", "eval", run, "--cas-classifier", "huge")  # refused before any sampling
    assert r.exit_code == 2 and "cas_classifier must be one of small, recognizer, got 'huge'" in r.output


@pytest.mark.parametrize("args,message", [  # the list, each as a user would hit it
    (["--class", "gren"], "error: unknown class 'gren'; did you mean 'green'"),
    (["--prompt", ""], "error: empty prompt"),
    (["--prompt", "a green square"], "error: --prompt needs a run trained with --text-conditional"),
    (["--steps", "0"], "error: steps must be at least 1"),
    (["--like", "JUNK"], "error: "),
    (["--guidance", "3", "UNC"], "error: --guidance (classifier-free guidance) needs a class- or text"),
])
def test_cli_sample_bad_input_is_one_line_exit_2(cli_runs, args, message):
    out, vae, unc = cli_runs
    run = unc if "UNC" in args else vae
    args = [a for a in args if a != "UNC"]
    if "JUNK" in args:
        junk = out / "junk.png"
        junk.write_text("not an image")
        args = ["--like", str(junk)]
        message = f"error: {junk}: not a readable image"
    r = run_cli("generate", "sample", run, "--n", "2", "--out", out / "x.png", *args)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().startswith(message) and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args,message", [
    (["sample", "{vae}", "--class", "1", "--prompt", "x"], "error: give either a class or a prompt"),
    (["sample", "{unc}", "--steps", "-2"], "error: steps must be at least 1"),
    (["sample", "{vae}", "--sampler", "ddim"], "error: --sampler/--steps apply to diffusion runs"),
    (["sample", "{vae}", "--guidance", "2"], "error: --guidance needs a diffusion run or a pixelcnn run trained"),
    (["sample", "{vae}", "--like", "/no/such.png"], "error: /no/such.png: no such image file"),
    (["interpolate", "{unc}", "--a", "x.png"], "error: give both images to interpolate between, or neither"),
    (["train", "--model", "vqgan"], "error: model must be one of gan, vae, pixelcnn, diffusion"),
    (["train", "--modle", "gan"], "No such option"),
    (["sample", "/nonexistent/run"], "error: /nonexistent/run: not a recgen run directory"),
])
def test_cli_bad_input_other(cli_runs, args, message):
    out, vae, unc = cli_runs
    r = cli("generate", *[a.format(unc=unc, vae=vae) for a in args])
    assert r.exit_code == 2, r.output
    assert message in r.stderr and "Traceback" not in r.stderr


def test_training_augmentation_reaches_every_step_and_bad_names_fail_early(monkeypatch, tmp_path):
    """`--augment` moves the training images of each step (all four families share the hook); an unknown name
    is a one-line error before any run directory exists."""
    from recgen.data import transforms

    seen = []
    flip = transforms.RandomFlip.__call__
    monkeypatch.setattr(transforms.RandomFlip, "__call__", lambda self, x, g: seen.append(len(x)) or flip(self, x, g))
    for fam in FAMILIES:
        seen.clear()
        run = generate.train(**tiny(fam, out=str(tmp_path), augment="flip", epochs=1, size=SIDE.get(fam, 0)))
        assert seen == [12, 12, 12], fam  # 3 steps of 12 of the 40 training images
        assert run.run.config["options"]["augment"] == "flip"
    with pytest.raises(RecgenError, match="augment: unknown 'spin'"):
        generate.train(**tiny("vae", out=str(tmp_path / "bad"), augment="flip+spin"))
    assert not (tmp_path / "bad").exists()


def test_long_runs_keep_at_most_twenty_sample_grids(tmp_path):
    """100+ tiny epochs (`recgen augment` on 100 images) must not pay for a sample grid each."""
    from recgen import generate

    gen = generate.train(model="vae", data="digits", limit=5, epochs=45, batch_size=50, base=8, val_fraction=0.0,
                         threads=1, out=str(tmp_path))
    grids = sorted(p.name for p in gen.run.plots.glob("samples-epoch*.png"))
    assert grids == [f"samples-epoch{e:03d}.png" for e in range(3, 46, 3)]  # every 3rd epoch, the last included


def test_nonleaky_augmentation_labels_moves_and_samples_without_them(monkeypatch, tmp_path):
    """`--augment-p` (diffusion): moved training images come with their move as labels, unmoved ones with zeros and
    unchanged pixels; the network sees the labels in training and none (zeros) when sampling; a saved run keeps the
    wider network and loads; a bad value or family fails before a run directory exists."""
    from recgen.generate import diffusion

    x = torch.rand(64, 1, 12, 12)
    moved, labels = diffusion.nonleaky_affine(x, torch.Generator().manual_seed(0), 0.5)
    off = labels.abs().sum(1) == 0
    assert labels.shape == (64, diffusion.AUGMENT_DIM) and 10 < int(off.sum()) < 54
    assert torch.equal(moved[off], x[off]) and not torch.allclose(moved[~off], x[~off])
    angle = torch.rad2deg(torch.atan2(labels[:, 0], labels[:, 1] + 1))
    assert angle.abs().max() <= diffusion.AUGMENT_RANGE["degrees"] + 1e-4
    _, none = diffusion.nonleaky_affine(x, torch.Generator().manual_seed(0), 0.0)
    assert not none.any()

    seen = []
    forward = diffusion.Denoiser.forward

    def spy(self, x, t, c=None, drop=None, aug=None):
        seen.append(None if aug is None else aug.clone())
        return forward(self, x, t, c, drop, aug)

    monkeypatch.setattr(diffusion.Denoiser, "forward", spy)
    run = generate.train(**tiny("diffusion", out=str(tmp_path), augment_p=0.5, epochs=1))
    train_calls = seen[:3]  # 3 optimizer steps, then the epoch's sample grid
    assert all(a is not None and a.shape == (12, diffusion.AUGMENT_DIM) for a in train_calls)
    assert any(a.any() for a in train_calls) and any((a.abs().sum(1) == 0).any() for a in train_calls)
    assert all(a is None for a in seen[3:])
    assert run.arch.augment_dim == diffusion.AUGMENT_DIM
    seen.clear()
    x, _ = generate.load(run.run.path).sample(3, class_=1, seed=0)
    assert x.shape == (3, run.arch.height, run.arch.width, 1) and all(a is None for a in seen)
    for bad, message in [(dict(model="diffusion", augment_p=1.5), "augment_p must be a probability"),
                         (dict(model="vae", augment_p=0.5), "for diffusion models, not vae")]:
        with pytest.raises(RecgenError, match=message):
            generate.train(**tiny(bad["model"], out=str(tmp_path / "bad"), **bad))
    assert not (tmp_path / "bad").exists()
