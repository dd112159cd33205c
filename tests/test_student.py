"""Few-step students (recgen/generate/student.py): a tiny diffusion teacher on 8x8 digits, a student distilled
from it through the shared loop; samples, agreement with the teacher, exact resume, the CLI, the REST API,
augment, bad input."""

import dataclasses
import hashlib
import json

import numpy as np
import pytest
import torch

from conftest import cli, run_cli
from recgen import generate
from recgen.errors import RecgenError
from recgen.generate import diffusion
from recgen.generate import student as st
from recgen.train import seeded

# 21 steps an epoch: the teacher's 336 steps draw digit-like samples; a weaker teacher's probability-flow ODE
# is too erratic for a 126-step student to follow
TEACHER = dict(model="diffusion", data="digits", size=8, base=16, epochs=16, batch_size=64, val_fraction=0.05,
               threads=1)
STUDENT = dict(epochs=6, batch_size=64, lr=5e-4, grid=10, steps=2, threads=1)
SHORT = {**STUDENT, "epochs": 2}  # for the resume check


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(teacher, student, a 2-epoch student, the same stopped at step 30 and resumed, runs root)."""
    out = tmp_path_factory.mktemp("student")
    teacher = generate.train(**TEACHER, out=str(out), name="teacher")
    full = generate.distill(str(teacher.path), **STUDENT, out=str(out), name="full")
    short = generate.distill(str(teacher.path), **SHORT, out=str(out), name="short")
    part = generate.distill(str(teacher.path), **SHORT, max_steps=30, out=str(out), name="part")
    assert part.run.config["stopped"] == "max_steps"
    resumed = generate.train(resume=str(part.path))  # `generate train --resume` continues a student too
    return teacher, full, (short, resumed), out


def test_student_run_names_its_teacher(runs):
    teacher, student, _, _ = runs
    p = student.path
    for f in ("config.yaml", "model.json", "metrics.csv", "report.html", "weights/best.safetensors",
              "state/last.json", "eval-test.json"):
        assert (p / f).is_file(), f
    rec = student.run.config["teacher"]
    sha = hashlib.sha256(teacher.run.weights_path("best").read_bytes()).hexdigest()
    assert rec["run"] == str(teacher.path.resolve()) and rec["weights_sha256"] == sha
    assert rec["train_seconds"] == teacher.run.config["train_seconds"]
    info = json.loads((p / "model.json").read_text())
    assert info["family"] == "student" and info["args"]["steps"] == 2 and info["args"]["guidance"] == 2.0
    assert student.config.data == "digits" and student.config.size == 8  # the teacher's data, copied
    assert student.run.config["data_fingerprint"] == teacher.run.config["data_fingerprint"]
    assert set(student.run.read_metrics()[-1]) >= {"val_teacher_mse", "val_teacher_mse_1step"}


def test_one_step_samples_shape_labels_and_seed(runs):
    _, student, _, _ = runs
    x, y = student.sample(6, steps=1, class_=3, seed=5)
    assert x.dtype == np.uint8 and x.shape == (6, 8, 8, 1) and list(y) == [3] * 6
    again = generate.load(student.path)
    assert np.array_equal(x, again.sample(6, steps=1, class_=3, seed=5)[0])
    assert not np.array_equal(x, again.sample(6, steps=1, class_=3, seed=6)[0])
    x2, y2 = again.sample(10, seed=0)  # default: the steps it was distilled for, classes in turn
    assert x2.shape == (10, 8, 8, 1) and list(y2) == list(range(10))


def test_distilled_student_is_closer_to_the_teacher_than_where_it_started(runs):
    """The same noise through the teacher's 20 guided steps and through the student's 1 step: distillation
    must bring the student closer than the teacher's own weights used as a consistency function (its starting
    point, the untrained student) and far closer than a random network; its 1-step sample set must also lie
    closer to the teacher's (Frechet distance in pixel space, 500 images each)."""
    from recgen.evaluate.generation import frechet_distance

    teacher, student, _, _ = runs
    a, untrained = student.arch, {"model": teacher.modules["model"]}
    c, ref = st.teacher_reference(teacher, a)
    before, after = st.agreement(untrained, a, c, ref), st.agreement(student.modules, a, c, ref)
    assert after["teacher_mse_1step"] < 0.8 * before["teacher_mse_1step"], (before, after)
    assert after["teacher_mse_1step"] < 0.5 * st.agreement(st.build(a), a, c, ref)["teacher_mse_1step"]
    c, _ = teacher._condition(500)

    def flat(x):
        return x.flatten(1).double().numpy()

    ref = flat(diffusion.sample(teacher.modules, teacher.arch, c, 500, seeded(1), "dpm", 20, 2.0))
    fd = {k: frechet_distance(ref, flat(st.sample(m, a, c, 500, seeded(2), 1)))
          for k, m in (("before", untrained), ("after", student.modules))}
    assert fd["after"] < 0.85 * fd["before"], fd


def test_resume_is_exact(runs):
    _, _, (full, resumed), _ = runs
    a, b = full.run.load_weights("last"), resumed.run.load_weights("last")
    assert a.keys() == b.keys() and any(k.startswith("target.") for k in a)  # the EMA target travels too
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert [r["step"] for r in resumed.run.read_metrics()] == [21, 30, 42]


def test_one_step_sample_is_the_clipped_x0_prediction(runs):
    """One step is f(x_T, T) = x_0 prediction clipped to [-1, 1] (c_skip(T) ~ 0): checked by hand."""
    _, student, _, _ = runs
    a, m = student.arch, student.modules
    x = st.sample(m, a, torch.tensor([4, 7]), 2, seeded(1), 1)
    z = torch.randn(2, 1, 8, 8, generator=seeded(1))
    abar = st.make_scheduler(a).alphas_cumprod
    x0 = st.predict_x0(m["model"], z, torch.full((2,), a.train_timesteps - 1), torch.tensor([4, 7]), abar,
                       a.alpha_floor).clamp(-1, 1)
    assert torch.allclose(x, (x0 + 1) / 2, atol=1e-5)


def test_two_step_sampling_follows_tcd_and_gamma_one_is_lcm(runs):
    """Step 1 predicts x_0 at T - 1, moves to t = 499 by TCD's rule (deterministic to (1 - gamma) t, fresh
    noise from there), step 2's prediction is the sample; gamma = 1 is LCMScheduler's rule, gamma = 0 uses no
    fresh noise at all."""
    import dataclasses

    _, student, _, _ = runs
    m, c = student.modules, torch.tensor([4, 7])
    for gamma in (0.3, 1.0, 0.0):
        a = dataclasses.replace(student.arch, gamma=gamma)
        abar = st.make_scheduler(a).alphas_cumprod
        g = seeded(1)
        z = torch.randn(2, 1, 8, 8, generator=g)
        t = torch.full((2,), a.train_timesteps - 1)
        x0 = st.predict_x0(m["model"], z, t, c, abar, a.alpha_floor).clamp(-1, 1)
        eps = (z - abar[999].sqrt() * x0) / (1 - abar[999]).sqrt()
        s = int((1 - gamma) * 499)
        x_s = abar[s].sqrt() * x0 + (1 - abar[s]).sqrt() * eps
        fresh = torch.randn(2, 1, 8, 8, generator=g)
        r = abar[499] / abar[s]
        x_t = x_s if gamma == 0 else r.sqrt() * x_s + (1 - r).sqrt() * fresh
        if gamma == 1.0:  # LCM's rule: x_0 re-noised to 499 with fresh noise only
            lcm = abar[499].sqrt() * x0 + (1 - abar[499]).sqrt() * fresh
            assert torch.allclose(x_t, lcm, atol=0.02), (x_t - lcm).abs().max()
        x0 = st.predict_x0(m["model"], x_t, torch.full((2,), 499), c, abar, a.alpha_floor).clamp(-1, 1)
        assert torch.allclose(st.sample(m, a, c, 2, seeded(1), 2), (x0 + 1) / 2, atol=1e-4), gamma


# ------------------------------------------------------------------------------------------------ CLI and API
def test_cli_distill_sample_and_eval(runs, tmp_path):
    teacher, _, _, _ = runs
    r = cli("generate", "distill", teacher.path, "--steps", "1", "--max-steps", "3", "--grid", "10",
            "--threads", "1", "--out", tmp_path)
    assert r.exit_code == 0, r.output
    run = tmp_path / "generate" / "student-1"
    assert "student of" in r.output and (run / "weights/best.safetensors").is_file()
    r = cli("generate", "sample", run, "--steps", "1", "--class", "7", "--n", "4",
            "--out", tmp_path / "s.png")
    assert r.exit_code == 0, r.output
    z = np.load(tmp_path / "s.npz")
    assert z["x"].shape == (4, 8, 8, 1) and z["y"].tolist() == [7] * 4
    r = cli("generate", "eval", run, "--no-judge", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["likelihood"]["teacher_mse_1step"] > 0


def test_rest_api_samples_from_a_student(runs):
    from fastapi.testclient import TestClient

    from recgen.serve.app import create_app

    _, _, _, root = runs
    client = TestClient(create_app(root), base_url="http://127.0.0.1")
    body = {"run": "generate/full-1", "n": 4, "class": "2", "steps": 1, "seed": 3}
    a = client.post("/api/generate/sample", json=body)
    assert a.status_code == 200 and a.json()["labels"] == [2] * 4
    assert a.json() == client.post("/api/generate/sample", json=body).json()
    bad = client.post("/api/generate/sample", json={**body, "steps": 4})
    assert bad.status_code == 400 and "at most 2 steps" in bad.json()["detail"]


@pytest.mark.parametrize("args,message", [
    (["--steps", "0"], "error: steps must be at least 1, got 0"),
    (["--steps", "9"], "error: steps must be between 1 and 8 for a student, got 9"),
    (["--grid", "0"], "error: grid must be between 1 and 1000"),
    (["--solver", "heun"], "error: solver must be one of ddim, dpm2s, got 'heun'"),
    (["--adversarial", "-1"], "error: adversarial must be a weight >= 0, got -1.0"),
])
def test_cli_distill_bad_options_are_one_line_and_leave_nothing(runs, tmp_path, args, message):
    teacher, _, _, _ = runs
    r = cli("generate", "distill", teacher.path, *args, "--out", tmp_path)
    lines = r.output.strip().splitlines()
    assert r.exit_code == 2 and lines[0].startswith(message) and len(lines) == 1, r.output
    assert not (tmp_path / "generate").exists()


def test_distill_needs_a_diffusion_teacher(runs, tmp_path):
    vae = generate.train(model="vae", data="digits", size=8, limit=10, epochs=1, max_steps=1, base=8,
                         val_fraction=0.1, latent_dim=4, threads=1, out=str(tmp_path / "v"))
    for teacher, message in ((vae.path, "distill needs a diffusion run as the teacher; this is a vae run"),
                             (tmp_path / "nowhere", "no such run directory")):
        r = cli("generate", "distill", teacher, "--out", tmp_path / "o")
        assert r.exit_code == 2 and message in r.output and len(r.output.strip().splitlines()) == 1, r.output
        assert not (tmp_path / "o").exists()
    with pytest.raises(RecgenError, match="data: a student takes these from its teacher run"):
        generate.distill(str(vae.path), data="digits")
    r = run_cli("generate", "distill", vae.path, "--data", "digits", "--out", tmp_path / "o")  # as users do
    assert r.returncode == 2 and r.stderr.startswith("error: No such option: --data"), r.stderr


def test_a_student_refuses_more_steps_than_it_was_distilled_for(runs):
    _, student, _, _ = runs
    r = cli("generate", "sample", student.path, "--steps", "3", "--n", "2")
    assert r.exit_code == 2, r.output
    assert "error: steps: this student was distilled for at most 2 steps, got 3" in r.output
    for kw, message in ((dict(sampler="ddim"), "own consistency sampler"), (dict(guidance=3.0), "--guidance"),
                        (dict(like=np.zeros((8, 8, 1), np.uint8)), "--like")):
        with pytest.raises(RecgenError, match=message):
            student.sample(2, **kw)


def test_augment_draws_from_a_student_of_its_generator(tmp_path):
    """`recgen augment --generator STUDENT`: a student of a generator trained on the subset saw only the
    subset (its data is its teacher's), so its synthetic images are clean."""
    from recgen.loop.augment import run_augment

    opts = dict(data="digits", real_per_class=4, ratios="0,1", seeds=1, steps=10, val_per_class=10, threads=1)
    run_augment(out=str(tmp_path), generator_model="diffusion", generator_steps=3, **opts)
    gen = tmp_path / "augment" / "augment-1" / "work" / "generate" / "gen-diffusion-1"
    stu = generate.distill(str(gen), max_steps=2, steps=1, threads=1, out=str(tmp_path / "s"))
    s = run_augment(out=str(tmp_path), generator=str(stu.path), **opts)
    assert s["label"] == "clean" and s["generator"] == str(stu.path) and len(s["arms"]) == 2


def test_dpm2s_teacher_step_is_exact_on_one_point_and_nearer_the_ode_than_ddim(runs):
    """DPM-Solver++(2S) between grid points, on noise predictions known exactly: for a one-image data set (where
    the ODE is the DDIM line) it lands where DDIM does; for a two-image one (a curved ODE) it lands far nearer 100
    one-timestep DDIM steps than one DDIM step does. A student distilled with it records the solver."""
    teacher, _, _, out = runs
    abar = st.make_scheduler(st.StudentConfig()).alphas_cumprod
    g = torch.Generator().manual_seed(0)

    def exact_eps(points):  # eps = (x - sqrt(a) E[x0 | x]) / sqrt(1 - a) for data = points (P, 1, 8, 8)
        def model(x, t, c, drop=None):
            a = abar[t].view(-1, 1, 1, 1, 1)
            d = ((x[:, None] - a.sqrt() * points[None]) ** 2).flatten(2).sum(-1)  # (B, P)
            w = torch.softmax(-d / (2 * (1 - a.view(-1, 1))), 1)
            x0 = (w[..., None, None, None] * points[None]).sum(1)
            return (x - a[:, 0].sqrt() * x0) / (1 - a[:, 0]).sqrt()
        return model

    one = exact_eps(torch.rand(1, 1, 8, 8, generator=g) - 0.5)
    two = exact_eps(torch.rand(2, 1, 8, 8, generator=g) - 0.5)
    for t0 in (899, 599, 399):
        t, s = torch.full((16,), t0), torch.full((16,), t0 - 100)
        x_t = torch.randn(16, 1, 8, 8, generator=g) * 0.5
        step = {solver: st.teacher_step(one, x_t, t, s, None, 1.0, abar, solver) for solver in ("ddim", "dpm2s")}
        assert torch.allclose(step["ddim"], step["dpm2s"], atol=1e-5)
        fine = x_t
        for i in range(t0, t0 - 100, -1):
            fine = st.teacher_step(two, fine, torch.full((16,), i), torch.full((16,), i - 1), None, 1.0, abar, "ddim")
        err = {solver: float((st.teacher_step(two, x_t, t, s, None, 1.0, abar, solver) - fine).pow(2).mean())
               for solver in ("ddim", "dpm2s")}
        assert err["dpm2s"] < 0.2 * err["ddim"], (t0, err)
    student = generate.distill(str(teacher.path), **{**SHORT, "epochs": 1, "max_steps": 5, "solver": "dpm2s"},
                               out=str(out), name="dpm2s")
    assert student.run.read_model_json()["args"]["solver"] == "dpm2s"


def test_a_time_budget_without_epochs_sizes_the_schedule_to_fit(runs, tmp_path):
    """--time-budget with no --epochs: the steps that fit are timed first and become train_steps, which the
    schedule spans (its learning rate ends near zero, not cut part-way); more seconds plan more steps."""
    teacher, _, _, _ = runs
    opts = {k: v for k, v in STUDENT.items() if k != "epochs"}
    short = generate.distill(str(teacher.path), **opts, time_budget=2.0, out=str(tmp_path), name="b2")
    longer = generate.distill(str(teacher.path), **opts, time_budget=6.0, out=str(tmp_path), name="b6", max_steps=1)
    planned = short.config.train_steps
    assert 0 < planned < longer.config.train_steps and "train_steps=" in short.run.config["resolved"]
    rows = short.run.read_metrics()
    if short.run.config["stopped"] == "completed":  # a machine much slower than its timed steps stops at the budget
        assert rows[-1]["step"] == planned and rows[-1]["lr"] < 0.05 * STUDENT["lr"]
    explicit = generate.distill(str(teacher.path), **STUDENT, time_budget=2.0, max_steps=1, out=str(tmp_path),
                                name="e")
    assert explicit.config.train_steps == 0 and explicit.config.epochs == STUDENT["epochs"]


def test_adversarial_term_trains_a_discriminator_that_resumes_exactly(runs, tmp_path):
    """--adversarial: a discriminator trains beside the student (its hinge statistics in metrics.csv, real
    images scored above fakes), travels in the checkpoint, and a run stopped and resumed ends with the same
    weights as one run straight through; the sampled weights are the student's alone."""
    teacher, _, _, _ = runs
    opts = {**SHORT, "adversarial": 0.1}
    full = generate.distill(str(teacher.path), **opts, out=str(tmp_path), name="adv")
    part = generate.distill(str(teacher.path), **opts, max_steps=30, out=str(tmp_path), name="advpart")
    resumed = generate.train(resume=str(part.path))
    a, b = full.run.load_weights("last"), resumed.run.load_weights("last")
    assert a.keys() == b.keys() and any(k.startswith("D.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    last = full.run.read_metrics()[-1]
    assert last["d_real"] > last["d_fake"] and 0 < last["d_loss"] < 2 and last["distill_loss"] > 0, last
    # train_loss is the sum of the three losses: consistency, 0.1 x the generator's hinge term, discriminator's
    assert abs(last["train_loss"] - (last["distill_loss"] - 0.1 * last["d_fake"] + last["d_loss"])) < 1e-3, last
    assert set(full.modules) == {"model"} and full.sample(4, steps=1, seed=0)[0].shape == (4, 8, 8, 1)
    # the student's adversarial term leaves the discriminator's gradient as its own hinge loss makes it (D in eval
    # mode: spectral normalisation's power iteration would otherwise move between the two passes)
    task = st.StudentTask(st.build(full.arch), full.arch, full.config, None, full.classes, torch.device("cpu"))
    task.modules["D"].eval()
    x, y = torch.rand(8, 1, 8, 8), torch.arange(8)
    grads = []
    for weight in (0.1, 0.0):
        task.cfg = dataclasses.replace(task.cfg, adversarial=weight)
        task.modules["D"].zero_grad(set_to_none=True)
        task.training_step((x, y), seeded(0))["loss"].backward()
        grads.append([p.grad.clone() for p in task.modules["D"].parameters()])
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*grads, strict=True))
