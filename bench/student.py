"""Few-step students (issue 34): sampling speed at 1, 2 and 4 steps beside the teacher's guided 20-step speed
measured in the same process, judge figures of the student's 2-step samples beside the teacher's, and the
distillation time beside the teacher's training time (both from the runs' config.yaml).

    python bench/student.py runs/generate/student-1 --judge runs/classify/judge-1 --n 2000

The teacher is the run the student's config.yaml names; `generate eval` writes eval-judge.json into both runs
(copy a shared teacher before distilling from it). Writes bench/results/student-YYYYMMDD.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from recgen import generate
from recgen.loop.judge import evaluate_generator
from recgen.machine import write_record


def images_per_s(gen, n: int, repeats: int, **kw) -> float:
    """Images per second of gen.sample(n, **kw) (fp32): median of `repeats` timed calls after a warm-up."""
    gen.sample(min(n, 16), seed=99, **kw)
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        gen.sample(n, seed=r, **kw)
        times.append(time.perf_counter() - t0)
    return round(n / statistics.median(times), 1)


def judged(run: str, judge: str, n: int, reuse: bool = False, **kw) -> dict:
    """FID, recognizability and CAS of n samples (`recgen generate eval RUN --judge JUDGE --n N`); with
    reuse, the run's eval-judge.json when it judged n default samples with this judge (the teacher's costs
    minutes)."""
    saved = Path(run) / "eval-judge.json"
    res = json.loads(saved.read_text()) if reuse and saved.is_file() else None
    card = res["card"] if res is not None else {}
    same = (card.get("n"), card.get("sampling_precision"), Path(card.get("judge", "")).resolve()) == \
        (n, kw.get("precision", "fp32"), Path(judge).resolve())
    if not same or not {"fid", "cas", "recognizability"} <= set(res["model"]):
        res = evaluate_generator(run, judge, n=n, seed=0, **kw)
    m = res["model"]
    return {k: m.get(k) for k in ("fid", "recognizability", "cas")} | {"fid_floor": res["floor"].get("fid")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("student", help="a student run (recgen generate distill)")
    p.add_argument("--judge", required=True, help="the recgen CNN run that judges both generators")
    p.add_argument("--n", type=int, default=2000, help="samples judged per generator")
    p.add_argument("--batch", type=int, default=256, help="images per sampling call in the speed test")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per student step count")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-judge", action="store_true", help="speed and cost only")
    p.add_argument("--judge-precision", default="fp32", help="judged samples drawn in fp32 | bf16")
    p.add_argument("--reuse-teacher-eval", action="store_true",
                   help="take the teacher's figures from its eval-judge.json when it matches --n and --judge")
    p.add_argument("--name", default="student", help="record name (bench/results/NAME-DATE.json)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    student = generate.load(a.student)
    teacher_path = student.run.config["teacher"]["run"]
    teacher = generate.load(teacher_path)
    steps = [k for k in (1, 2, 4) if k <= student.arch.steps]
    speed = {f"student_{k}step_images_per_s": images_per_s(student, a.batch, a.repeats, steps=k)
             for k in steps}
    speed["teacher_images_per_s"] = images_per_s(teacher, a.batch, 1)
    # beside the fp32 target: bfloat16 autocast, where the CPU multiplies bf16 natively (AMX)
    speed["student_1step_bf16_images_per_s"] = images_per_s(student, a.batch, a.repeats, steps=1,
                                                           precision="bf16")
    for k in steps:
        ratio = speed[f"student_{k}step_images_per_s"] / speed["teacher_images_per_s"]
        speed[f"speedup_{k}step"] = round(ratio, 1)
    cost = {"distill_seconds": student.run.config.get("train_seconds"),
            "teacher_train_seconds": teacher.run.config.get("train_seconds")}
    cost["distill_over_teacher_time"] = round(cost["distill_seconds"] / cost["teacher_train_seconds"], 3)
    figures = {**speed, **cost}
    details = {"student": str(student.path), "teacher": teacher_path, "student_steps": student.arch.steps,
               "grid": student.arch.grid, "guidance": student.arch.guidance, "teacher_step": student.arch.solver,
               "distill_options": {k: student.run.options.get(k) for k in (
                   "epochs", "batch_size", "lr", "schedule", "ema", "target_ema", "max_steps",
                   "time_budget", "adversarial")},
               "student_sampler": f"TCDScheduler, gamma {student.arch.gamma}",
               "teacher_sampler": f"{teacher.config.sampler} {teacher.config.steps} steps, guidance "
                                  f"{teacher.config.guidance}", "batch": a.batch, "threads": a.threads,
               "metrics": student.run.read_metrics()[-1]}
    if not a.no_judge:
        s2 = judged(a.student, a.judge, a.n, steps=min(2, student.arch.steps), precision=a.judge_precision)
        t20 = judged(teacher_path, a.judge, a.n, a.reuse_teacher_eval, precision=a.judge_precision)
        figures.update({f"student_2step_{k}": v for k, v in s2.items()})
        figures.update({f"teacher_20step_{k}": v for k, v in t20.items()})
        figures["fid_ratio"] = round(s2["fid"] / t20["fid"], 3)
        figures["cas_gap_points"] = round(100 * (t20["cas"] - s2["cas"]), 2)
        details["judge"] = a.judge
        details["n"], details["judge_precision"] = a.n, a.judge_precision
    print(figures)
    out = write_record(a.name, "Few-step student vs its diffusion teacher (fp32, class-conditional)",
                       "python " + " ".join(sys.argv), figures, details)
    print(out)


if __name__ == "__main__":
    main()
