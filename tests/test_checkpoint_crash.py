"""A checkpoint is one commit: a process killed at any file write of a checkpoint resumes to exactly the weights,
best weights and metrics of an uninterrupted run, for a classifier, a generator, a restorer and a detector.

Each task's own train() builds the Trainer (real task, config, run directory, data); the test stops it just before
fit so the report written after training does not cost every case. The crashing run is a forked child whose k-th
os.replace (every file a checkpoint publishes: atomic_write's rename of a finished temp file, the commit's renames)
ends the process with os._exit just before it happens, leaving that temp file behind as a real kill would."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from recgen import classify, detect, generate, restore
from recgen.runs import Run
from recgen.train import Trainer

KILLED = 77
ONE_CPU = {"threads": 1, "device": "cpu"}  # the crashing runs are forked, and CUDA does not survive a fork
CASES = {
    "classifier": (classify.train, dict(model="cnn", data="digits", epochs=3, batch_size=16, stem_width=8,
                                        widths="16", blocks="0", limit=8, **ONE_CPU)),
    "generator": (generate.train, dict(model="vae", data="digits", limit=5, epochs=3, batch_size=12, base=8,
                                       latent_dim=4, val_fraction=0.2, **ONE_CPU)),
    "restorer": (restore.train, dict(task="denoise", data="digits", epochs=3, batch_size=16, widths="8,16,16",
                                     limit=6, ema=0.0, lr=3e-3, val_fraction=0.2, **ONE_CPU)),
    "detector": (detect.train, dict(data="digits", canvas=64, min_size=16, max_size=32, train_scenes=32,
                                    test_scenes=8, widths="8,16,16,24", blocks="0,1,0,0", neck=16, batch_size=16,
                                    epochs=3, val_fraction=0.25, **ONE_CPU)),
}


class _Built(Exception):
    pass


def built(train, **options):
    """(trainer, data, resume) exactly as `train(**options)` would fit them."""
    got = {}

    def stop(self, data, resume=False):
        got.update(trainer=self, data=data, resume=resume)
        raise _Built

    real, Trainer.fit = Trainer.fit, stop
    try:
        train(**options)
    except _Built:
        pass
    finally:
        Trainer.fit = real
    return got["trainer"], got["data"], got["resume"]


def fit_counting_replaces(trainer, data, kill_at=0):
    """Fit, recording where each os.replace puts a file; with kill_at=k the process ends just before the k-th."""
    real, seen = os.replace, []

    def replace(src, dst, *a, **kw):
        seen.append(str(dst))
        if len(seen) == kill_at:
            os._exit(KILLED)
        return real(src, dst, *a, **kw)

    os.replace = replace
    try:
        trainer.fit(data)
    finally:
        os.replace = real
    return seen


def crash(trainer, data, k):
    """Fit in a forked child killed at the k-th replace; return its exit code."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            fit_counting_replaces(trainer, data, k)
        except BaseException:  # noqa: BLE001 (reported by the exit code)
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def comparable(run):
    return [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in run.read_metrics()]


def assert_same_weights(a, b, what):
    assert a.keys() == b.keys(), what
    for k in a:
        assert torch.equal(a[k], b[k]), f"{what}: {k}"


@pytest.fixture(scope="module", params=list(CASES))
def reference(request, tmp_path_factory):
    """(case, uninterrupted trainer, the files each os.replace of its fit published in order, the last weights
    each checkpoint committed by step)."""
    train, options = CASES[request.param]
    out = tmp_path_factory.mktemp(request.param)
    trainer, data, _ = built(train, out=str(out), name="ref", **options)
    committed, commit = {}, trainer.run.commit_checkpoint

    def record(files, **info):
        committed[info["step"]] = files["weights/last.safetensors"]
        commit(files, **info)

    trainer.run.commit_checkpoint = record
    events = fit_counting_replaces(trainer, data)
    return request.param, trainer, events, committed


def kill_points(case, events):
    """Indices (1-based) of the replaces to kill at, all inside the second epoch's checkpoint: its staged files,
    its commit (the manifest) and its roll-forward. Every point for the classifier, three for the others."""
    ends = [i + 1 for i, e in enumerate(events) if e.endswith(os.path.join("state", "checkpoint.json"))]
    assert len(ends) == 3, events  # one checkpoint per epoch
    first, last = ends[0] + 1, ends[1]
    staged = [i for i in range(first, last + 1) if f"{os.sep}pending{os.sep}" in events[i - 1]]
    commit = next(i for i in staged if events[i - 1].endswith("manifest.json"))
    if case == "classifier":
        return list(range(first, last + 1)), staged, commit
    return [staged[1], commit, commit + 2], staged, commit


def test_kill_at_every_write_point_resumes_exactly(reference, tmp_path, capsys):
    case, ref_trainer, events, _ = reference
    ref, (train, options) = ref_trainer.run, CASES[case]
    points, staged, commit = kill_points(case, events)
    ref_last, ref_best = ref.load_weights("last"), ref.load_weights("best")
    for k in points:
        what = f"{case}, killed before write {k} ({os.path.relpath(events[k - 1], ref.path)})"
        trainer, data, _ = built(train, out=str(tmp_path), name=f"k{k}", **options)
        assert crash(trainer, data, k) == KILLED, what
        killed = Run(trainer.run.path)
        before = killed.read_metrics()
        if k > commit:  # committed, not yet all in place: readers see the committed checkpoint meanwhile
            manifest = json.loads((killed.path / "state" / "pending" / "manifest.json").read_text())
            for rel, path in (("weights/last.safetensors", killed.weights_path("last")),
                              ("state/last.json", killed._committed("state/last.json"))):
                assert hashlib.sha256(path.read_bytes()).hexdigest() == manifest["files"][rel], what
            assert before[-1]["step"] == manifest["step"] == killed.load_state()["step"], what
        capsys.readouterr()
        resumed, data, resume = built(train, resume=str(trainer.run.path))
        hist = resumed.fit(data, resume=resume)
        note = capsys.readouterr().err
        run = resumed.run
        assert_same_weights(ref_last, run.load_weights("last"), what)
        assert_same_weights(ref_best, run.load_weights("best"), what)
        assert comparable(run) == comparable(ref), what  # every row once
        leftovers = [p for p in run.path.rglob("*") if p.name.endswith(".tmp") or p.name == "pending"]
        assert leftovers == [], what
        # a partial checkpoint (some staged file written, not committed) is reported in one line
        partial = staged[0] < k <= commit
        assert ("was cut short" in note) == partial, (what, note)
        # the clock continues across the resume
        secs = [r["seconds"] for r in run.read_metrics()]
        assert secs == sorted(secs) and hist.seconds >= max((r["seconds"] for r in before), default=0), what


def test_best_is_the_best_scored(reference):
    case, trainer, _, committed = reference
    rows, task = trainer.run.read_metrics(), trainer.task
    scores = [r[task.monitor] for r in rows]
    best = (min if task.monitor_mode == "min" else max)(scores)
    assert trainer.run.load_state()["best"] == best
    first = rows[scores.index(best)]["step"]  # a tie keeps the earlier weights
    assert trainer.run.weights_path("best").read_bytes() == committed[first], case


def test_run_without_manifest_still_resumes(tmp_path):
    """A run written before checkpoints had a manifest (no state/checkpoint.json) resumes as before."""
    train, options = CASES["classifier"]
    full, data, _ = built(train, out=str(tmp_path), name="full", **options)
    full.fit(data)
    part, data, _ = built(train, out=str(tmp_path), name="part", **{**options, "max_steps": 3})
    part.fit(data)
    (part.run.path / "state" / "checkpoint.json").unlink()
    resumed, data, resume = built(train, resume=str(part.run.path))
    resumed.fit(data, resume=resume)
    assert_same_weights(full.run.load_weights("last"), resumed.run.load_weights("last"), "old run")


def test_changed_checkpoint_file_is_refused(tmp_path):
    from recgen.errors import RecgenError

    train, options = CASES["classifier"]
    part, data, _ = built(train, out=str(tmp_path), name="part", **{**options, "max_steps": 3})
    part.fit(data)
    (part.run.path / "metrics.csv").write_text("epoch,step\n")
    resumed, data, resume = built(train, resume=str(part.run.path))
    with pytest.raises(RecgenError, match=r"metrics\.csv: missing or changed since checkpoint"):
        resumed.fit(data, resume=resume)


def test_ctrl_c_exits_130_with_a_resumable_checkpoint(tmp_path):
    """SIGINT during `recgen classify train`: checkpoint, the resume hint, one line 'interrupted', exit 130."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    args = ["classify", "train", "--model", "cnn", "--data", "digits", "--epochs", "2000", "--batch-size", "16",
            "--stem-width", "8", "--widths", "16", "--blocks", "0", "--limit", "8", "--threads", "1",
            "--device", "cpu", "--out", str(tmp_path)]
    # SIGINT as in a terminal (a shell's background job, such as a CI step, starts with it ignored)
    proc = subprocess.Popen([sys.executable, "-m", "recgen", *args], stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob("classify/*/state/checkpoint.json")):  # training has committed a checkpoint
            assert proc.poll() is None and time.monotonic() < deadline, "training did not start"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    run = Run(next((tmp_path / "classify").iterdir()))
    assert f"continue with --resume {run.path}" in err and err.strip().splitlines()[-1] == "interrupted", err
    step = run.load_state()["step"]
    assert step > 0 and run.config["stopped"] == "interrupted"
    resumed, data, resume = built(classify.train, resume=str(run.path), max_steps=step + 2)
    assert resume and resumed.fit(data, resume=True).stopped == "max_steps"
    assert run.load_state()["step"] == step + 2
