"""Few-step students at test scale (8x8 sklearn digits): does consistency distillation bring the student
closer to its teacher than where it starts (the teacher's own weights read as a consistency function)?

    python bench/student_digits.py --out /tmp/student-digits

Trains a small class-conditional diffusion teacher, distils a 2-step student, and compares 1- and 2-step
samples with the teacher's guided 20-step DPM-Solver++ samples: pixel MSE from the same noise (64 images) and
the Frechet distance in pixel space between sample sets (500 images each). Writes
bench/results/student-digits-DATE.json.
"""

from __future__ import annotations

import argparse
import sys

import torch

from recgen import generate
from recgen.evaluate.generation import frechet_distance
from recgen.generate import diffusion
from recgen.generate import student as st
from recgen.machine import write_record
from recgen.train import seeded


def pixel_fd(teacher, modules, arch, n: int, steps: int) -> float:
    c, _ = teacher._condition(n)

    def flat(x):
        return x.flatten(1).double().numpy()

    ref = diffusion.sample(teacher.modules, teacher.arch, c, n, seeded(1), "dpm", 20, arch.guidance)
    return round(frechet_distance(flat(ref), flat(st.sample(modules, arch, c, n, seeded(2), steps))), 4)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="root folder for the two runs")
    p.add_argument("--teacher-epochs", type=int, default=24)
    p.add_argument("--student-epochs", type=int, default=12)
    p.add_argument("--solver", default="", help="the student's teacher step (default: DistillConfig's)")
    a = p.parse_args()
    torch.set_num_threads(1)
    teacher = generate.train(model="diffusion", data="digits", size=8, base=16, epochs=a.teacher_epochs,
                             batch_size=64, val_fraction=0.05, threads=1, out=a.out, name="teacher")
    student = generate.distill(str(teacher.path), epochs=a.student_epochs, steps=2, threads=1, out=a.out,
                               **({"solver": a.solver} if a.solver else {}))
    arch, start = student.arch, {"model": teacher.modules["model"]}
    c, ref = st.teacher_reference(teacher, arch)
    figures = {}
    for name, mods in (("start", start), ("distilled", student.modules)):
        for k, v in st.agreement(mods, arch, c, ref).items():
            figures[f"{name}_{k}"] = v
        for k in (1, 2):
            figures[f"{name}_pixel_fd_{k}step"] = pixel_fd(teacher, mods, arch, 500, k)
    figures["teacher_train_seconds"] = teacher.run.config["train_seconds"]
    figures["distill_seconds"] = student.run.config["train_seconds"]
    print(figures)
    details = {"teacher": str(teacher.path), "student": str(student.path),
               "student_options": student.run.options,
               "steps_per_epoch": student.run.read_metrics()[0]["step"]}
    title = "Few-step student at test scale (8x8 digits): agreement with the teacher"
    print(write_record("student-digits", title, "python " + " ".join(sys.argv), figures, details))


if __name__ == "__main__":
    main()
