"""The generator family protocol (recgen/generate/family.py): every registered family implements it; SampleOptions
is the one declaration of the sampling options (CLI flags, REST fields, Python keywords); unsupported operations are
refused from the capability flags; the renamed architecture options still accept their old names."""

import dataclasses
import shutil
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
import typer
import yaml
from conftest import cli

from recgen import generate
from recgen.errors import RecgenError
from recgen.generate.common import GeneratorTask
from recgen.generate.config import GenerateConfig, arch_config
from recgen.generate.family import CAPABILITIES, METHODS, REGISTRY, GeneratorFamily, get_family, refuse
from recgen.generate.options import SampleOptions
from recgen.train import seeded

FOUR = ["gan", "vae", "pixelcnn", "diffusion"]
TINY_ARCH = {"gan": dict(gan_width=8, latent_size=4), "vae": dict(vae_width=8, latent_size=4),
             "pixelcnn": dict(pixelcnn_width=8, pixelcnn_layers=2, levels=16),
             "diffusion": dict(unet_width=8, unet_blocks=1)}


def _overrides(fam: GeneratorFamily, name: str) -> bool:
    return getattr(type(fam), name) is not getattr(GeneratorFamily, name)


def test_the_registry_holds_the_four_families_and_each_implements_the_protocol():
    assert set(FOUR) <= set(REGISTRY)
    for name in REGISTRY:
        fam = get_family(name)
        assert isinstance(fam, GeneratorFamily) and fam.name == name
        assert dataclasses.is_dataclass(fam.arch_class) and issubclass(fam.task_class, GeneratorTask)
        for method in ("make_arch", "build", "sample", "evaluate"):
            assert _overrides(fam, method), (name, method)
        for flag in CAPABILITIES:
            assert isinstance(getattr(fam, flag), bool), (name, flag)
        for flag, method in METHODS.items():  # a flag set promises its method, a flag unset leaves the base one
            assert _overrides(fam, method) == any(getattr(fam, f) for f, m in METHODS.items() if m == method), \
                (name, flag)
        assert not fam.has_latent or _overrides(fam, "latent_size")
        assert isinstance(fam.side_multiple, int) and fam.side_multiple >= 1
        assert set(fam.options) <= {f.name for f in dataclasses.fields(GenerateConfig)}
    with pytest.raises(RecgenError, match="model must be one of gan, vae, pixelcnn, diffusion"):
        get_family("vqgan")


@pytest.mark.parametrize("name", FOUR)
def test_each_family_samples_through_the_protocol(name):
    """make_arch -> build -> sample (and vary where it can) give images in [0, 1], the same for the same seed."""
    fam = get_family(name)
    cfg = GenerateConfig(model=name, **TINY_ARCH[name])
    arch = arch_config(cfg, (1, 8, 8), 3)
    assert isinstance(arch, fam.arch_class)
    torch.manual_seed(0)
    modules = {k: m.eval() for k, m in fam.build(arch).items()}
    opts = SampleOptions(n=2, sampler="ddim", steps=2, guidance=1.0, strength=0.5)
    cond = torch.tensor([0, 2])
    with torch.no_grad():
        x = fam.sample(modules, arch, cond, 2, seeded(1), opts)
        assert x.shape == (2, 1, 8, 8) and 0 <= float(x.min()) <= float(x.max()) <= 1
        assert torch.equal(x, fam.sample(modules, arch, cond, 2, seeded(1), opts))
        if fam.can_vary:
            v = fam.vary(modules, arch, cond, torch.full((1, 1, 8, 8), 0.5), 2, seeded(1), opts)
            assert v.shape == (2, 1, 8, 8)
        if fam.has_latent:
            z = torch.zeros(2, fam.latent_size(arch))
            assert fam.decode(modules, arch, z, cond).shape == (2, 1, 8, 8)


# ------------------------------------------------------------------------------------------------ SampleOptions
@dataclass
class WithEta(SampleOptions):
    eta: float = field(default=0.0, metadata={"help": "DDIM noise share (a field added for this test)"})


def _command_options(fn) -> dict[str, object]:
    app = typer.Typer()
    app.command()(fn)
    app.command("other")(lambda: None)  # two commands, so the first keeps its name
    return {p.name: p for p in typer.main.get_command(app).commands[fn.__name__].params}


def test_sample_options_drive_the_cli_flags_and_the_rest_fields():
    from recgen.cli_kit import options_from
    from recgen.serve.models import SampleRequest, request_model

    names = [f.name for f in dataclasses.fields(SampleOptions)]
    sample_cmd = typer.main.get_command(__import__("recgen.cli", fromlist=["app"]).app).commands["generate"]
    params = {p.name: p for p in sample_cmd.commands["sample"].params}
    assert set(names) <= set(params) and params["class_"].opts == ["--class"]
    assert params["strength"].help == SampleOptions.__dataclass_fields__["strength"].metadata["help"]
    assert set(names) <= set(SampleRequest.model_fields) and SampleRequest.model_fields["class_"].alias == "class"

    # a field added to the dataclass appears as a flag and as a REST field, with its help, and reaches the code
    got = {}

    def sample(run: str, options: WithEta | None = None):
        got["options"] = options

    opts = _command_options(options_from(WithEta)(sample))
    assert opts["eta"].opts == ["--eta"] and opts["eta"].help.startswith("DDIM noise share")
    req = request_model("R", WithEta, {})
    assert req.model_fields["eta"].description.startswith("DDIM noise share")
    assert req.model_validate({"eta": 0.3}).options().eta == 0.3
    with pytest.raises(ValueError, match="strength must be in"):  # the dataclass's own check, on every request
        req.model_validate({"strength": 2.0})


def test_sample_options_are_checked_in_one_place():
    for bad, message in [(dict(n=0), "n must be at least 1, got 0"), (dict(n=2.5), "n must be an integer"),
                         (dict(strength=0.0), "strength must be in"), (dict(precision="fp16"), "precision must be"),
                         (dict(temperature=float("nan")), "temperature must be a finite number"),
                         (dict(steps=0), "steps must be at least 1")]:
        with pytest.raises(RecgenError, match=message):
            SampleOptions(**bad)
    with pytest.raises(RecgenError, match="unknown option 'temprature'.*temperature"):
        SampleOptions.of({"temprature": 2.0})


# ---------------------------------------------------------------------------------- capability flags and errors
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("family-runs")
    common = dict(data="digits", limit=5, epochs=1, max_steps=1, batch_size=12, val_fraction=0.2, threads=1,
                  out=str(out))
    return {"gan": generate.train(model="gan", gan_width=8, latent_size=4, **common),
            "pixelcnn": generate.train(model="pixelcnn", size=8, pixelcnn_width=8, pixelcnn_layers=2, levels=16,
                                       **common)}


def test_unsupported_operations_are_refused_from_the_capability_flags(runs, monkeypatch):
    gan, pix = runs["gan"], runs["pixelcnn"]
    with pytest.raises(RecgenError, match=r"^interpolation needs a gan, vae or diffusion run; .* is a pixelcnn run$"):
        pix.interpolate(n=3)
    with pytest.raises(RecgenError, match=r"^--sampler/--steps apply to diffusion runs; .* is a gan run$"):
        gan.sample(2, steps=3)
    with pytest.raises(RecgenError, match=r"^embed needs a vae run; .* is a gan run$"):
        gan.embed(np.zeros((1, 28, 28, 1), np.uint8))
    with pytest.raises(RecgenError, match=r"^--like .* needs a vae, pixelcnn or diffusion run; .* is a gan run$"):
        gan.sample(2, like=np.zeros((28, 28, 1), np.uint8))
    # the same one line on the command line, exit code 2
    r = cli("generate", "sample", gan.path, "--steps", "3", "--n", "2")
    assert r.exit_code == 2 and r.stderr.strip().splitlines() == [
        f"error: --sampler/--steps apply to diffusion runs; {gan.path} is a gan run"]
    r = cli("generate", "interpolate", pix.path)
    assert r.exit_code == 2 and r.stderr.strip().startswith("error: interpolation needs a gan, vae or diffusion run")
    # the message follows the flags: a family that gains the capability is named in it
    monkeypatch.setattr(type(get_family("vae")), "takes_sampler", True)
    assert str(refuse("--steps", "takes_sampler", get_family("gan"), verb="apply to")).startswith(
        "--steps apply to vae or diffusion runs")


def test_sample_takes_one_sample_options_or_its_fields_as_keywords(runs):
    gan = runs["gan"]
    x = gan.sample(3, seed=4, temperature=0.5)[0]
    assert np.array_equal(x, gan.sample(SampleOptions(n=3, seed=4, temperature=0.5))[0])
    assert np.array_equal(x, gan.sample(SampleOptions(n=3), seed=4, temperature=0.5)[0])
    assert not np.array_equal(x, gan.sample(3, seed=4)[0])
    with pytest.raises(RecgenError, match="unknown option 'sed'.*seed"):
        gan.sample(2, sed=1)


# ------------------------------------------------------------------------------------- renamed architecture flags
def test_old_architecture_names_map_to_the_new_ones_and_still_load(runs, tmp_path):
    cfg = GenerateConfig(model="diffusion", base=8, layers=2)
    assert (cfg.unet_width, cfg.unet_blocks, cfg.base, cfg.layers) == (8, 2, 0, 0)
    assert GenerateConfig(model="vae", latent_dim=4).latent_size == 4
    assert GenerateConfig(model="pixelcnn", base=16, layers=3).pixelcnn_width == 16
    with pytest.raises(RecgenError, match="base is the old name of gan_width: give only gan_width"):
        GenerateConfig(model="gan", base=8, gan_width=16)
    with pytest.raises(RecgenError, match="unet_width is an option of diffusion runs, not gan"):
        generate.train(model="gan", data="digits", unet_width=8, out=str(tmp_path / "bad"))
    assert not (tmp_path / "bad").exists()
    gan = runs["gan"]
    options = gan.run.config["options"]
    assert options["gan_width"] == 8 and "base" not in options  # config.yaml records the new names
    # a run directory written before the rename (config.yaml with base / latent_dim / layers) still loads
    shutil.copytree(gan.path, tmp_path / "old")
    path = tmp_path / "old" / "config.yaml"
    old = yaml.safe_load(path.read_text())
    for new in ("gan_width", "vae_width", "latent_size", "pixelcnn_width", "pixelcnn_layers", "unet_width",
                "unet_blocks"):
        old["options"].pop(new)
    old["options"].update(base=8, latent_dim=4, layers=0)
    path.write_text(yaml.safe_dump(old))
    again = generate.load(tmp_path / "old")
    assert again.config.gan_width == 8 and again.sample(2, seed=0)[0].shape == (2, 28, 28, 1)
    # the old flags are accepted but hidden from --help
    help_text = cli("generate", "train", "--help").output
    assert "--unet-width" in help_text and "--base" not in help_text and "--latent-dim" not in help_text
