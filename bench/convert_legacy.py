"""One-off: the figures docs/BENCHMARKS.md quoted before it was generated, as records in write_record's format.

Sources: the JSON blocks between `<!-- bench:NAME -->` markers of the hand-kept page (and two older versions of
those blocks from git), the raw result files in bench/results/ the page cited, and one table of the page that had
no JSON (marked as transcribed in its details). Each record keeps its source's full JSON in `details`; `figures`
are the headline values, copied, or derived by one stated arithmetic step (a sum, a ratio, a mean over seeds).
Machines of these records predate the measured matmul peak; where the page stated one, it is kept.

    python bench/convert_legacy.py REV     # REV: the commit whose docs/BENCHMARKS.md was hand-kept
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
INTEL = "2 cores (Intel(R) Xeon(R) Processor), no GPU, torch 2.13.0+cpu, Python 3.11.7"
AMD = "2 cores (AMD EPYC), no GPU, precision auto = fp32, torch 2.13.0+cpu, Python 3.11.7"


def page(rev: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:docs/BENCHMARKS.md"], check=True,
                          capture_output=True, text=True).stdout


def sections(text: str) -> dict:
    out = {}
    for m in re.finditer(r"<!-- bench:([a-z0-9-]+) -->\n(.*?)<!-- /bench:\1 -->", text, re.S):
        body = m.group(2)
        h = re.search(r"^Measured (\d{4}-\d\d-\d\d) on (.*?) with `(.*?)`\.$", body, re.M | re.S)
        j = re.search(r"```json\n(.*?)\n```", body, re.S)
        if h and j:
            out[m.group(1)] = {"date": h.group(1), "machine": h.group(2), "command": h.group(3),
                               "json": json.loads(j.group(1))}
    return out


def parse_machine(line: str, peaks: tuple[int, int] | None = None) -> dict:
    """The one-line machine string of the old page -> write_record's machine dict (no peak unless stated)."""
    m = re.match(r"(\d+) cores \((.*?)\), (no GPU|CUDA .*?)(?:, fp32 matmul (\d+) GFLOP/s, bf16 matmul (\d+) "
                 r"GFLOP/s)?(?:, precision auto = (\w+))?, torch (\S+), Python (\S+)$", line)
    if not m:
        raise ValueError(f"machine line not understood: {line!r}")
    cores, cpu, gpu, f32, b16, auto, torch, py = m.groups()
    f32, b16 = (int(f32), int(b16)) if f32 else (peaks or (None, None))
    return {"cpu": cpu, "cores": int(cores), "gpu": None if gpu == "no GPU" else gpu.removeprefix("CUDA "),
            "fp32_gflops": f32, "bf16_gflops": b16, "precision_auto": auto, "torch": torch, "python": py}


def get(obj, path: str):
    """obj at a dotted path; `[i]` indexes lists; keys may hold dots only when quoted with {...}."""
    for part in re.findall(r"\{[^}]*\}|[^.\[\]]+|\[\d+\]", path):
        obj = obj[int(part[1:-1])] if part.startswith("[") else obj[part.strip("{}")]
    return obj


def pick(obj, picks: list[tuple[str, str]]) -> dict:
    """figures: label -> value at path, floats rounded to 4 decimals (the source keeps full precision)."""
    out = {}
    for label, path in picks:
        v = get(obj, path)
        out[label] = round(v, 4) if isinstance(v, float) else v
    return out


def record(name, title, command, date, machine, figures, details, peaks=None) -> dict:
    return {"name": name, "title": title, "command": command, "date": date,
            "machine": parse_machine(machine, peaks), "figures": figures, "details": details}


def load(file: str):
    text = (RESULTS / file).read_text()
    return [json.loads(x) for x in text.splitlines() if x.strip()] if file.endswith(".jsonl") else json.loads(text)


JUDGED = [("judge FID", "judged.model.fid"), ("FID floor (real vs real)", "judged.floor.fid"),
          ("FID ceiling (noise)", "judged.ceiling.fid"), ("precision", "judged.model.precision"),
          ("recall", "judged.model.recall"), ("recognizability", "judged.model.recognizability"),
          ("CAS", "judged.model.cas"), ("CAS floor (real images)", "judged.floor.cas"),
          ("reverse CAS", "judged.model.reverse_cas"), ("copy rate", "judged.model.copy_rate")]


def fid_ratio(judged: dict) -> dict:
    return {"judge FID / floor": round(judged["model"]["fid"] / judged["floor"]["fid"], 2)}


def main(rev: str) -> None:
    secs = {"now": sections(page(rev)), "demo-intel": sections(page("3d60c5b^")),
            "rf300": sections(page("67ebbcf^"))}
    specs = [*recognition(secs), *detection(secs), *restoration(secs), *generation(secs), *augmentation(secs),
             *other(secs)]
    for spec in specs:
        rec = record(**spec)
        out = RESULTS / f"{rec['name']}-{rec['date'].replace('-', '')}.json"
        out.write_text(json.dumps(rec, indent=2, default=str) + "\n")
        print(out.name, len(rec["figures"]))



def sec_spec(secs, key, sec, name, title, picks, command=None, extra=None, peaks=None):
    s = secs[key][sec]
    figures = {**pick(s["json"], picks), **(extra(s["json"]) if extra else {})}
    return dict(name=name, title=title, command=command or s["command"], date=s["date"], machine=s["machine"],
                figures=figures, details=s["json"], peaks=peaks)


def file_spec(file, name, title, command, date, machine, picks, extra=None, peaks=None):
    d = load(file)
    figures = {**pick(d, picks), **(extra(d) if extra else {})}
    return dict(name=name, title=title, command=command, date=date, machine=machine, figures=figures,
                details={"source": f"bench/results/{file}", "data": d}, peaks=peaks)


def recognition(secs):
    yield sec_spec(secs, "now", "cnn", "cnn", "CNN on Fashion-MNIST, default recipe (target: 95 % in 10 minutes)", [
        ("test accuracy (flip + shift TTA)", "test_accuracy"), ("macro F1", "macro_f1"),
        ("training seconds", "train_seconds"), ("seconds to 93 % test accuracy", "time_to_93_s"),
        ("training images/s", "train_images_per_s"), ("inference images/s (10 TTA views)", "inference_images_per_s")])
    yield sec_spec(secs, "now", "classical", "classical", "Classical features + SVM / random forest (defaults)", [
        ("SVM test accuracy", "svm.test_accuracy"), ("SVM training seconds", "svm.train_seconds"),
        ("random forest test accuracy", "rf.test_accuracy"), ("random forest training seconds", "rf.train_seconds")])
    rf = secs["rf300"]["classical"]
    yield dict(name="classical-rf-300-trees", title="Random forest with 300 trees (the default before 100)",
               command="recgen classify train --model rf --data fashion-mnist --val-fraction 0 --trees 300",
               date=rf["date"], machine=rf["machine"], details=rf["json"]["rf"],
               figures=pick(rf["json"], [("test accuracy", "rf.test_accuracy"),
                                         ("training seconds", "rf.train_seconds")]))
    svm = [("test accuracy", "svm.accuracy"), ("fit seconds", "svm.fit_seconds"),
           ("of which features, seconds", "svm.feature_seconds"), ("predict seconds", "svm.predict_seconds"),
           ("fit + predict seconds", "svm.total_seconds")]
    yield file_spec("classical-svm-20261130-newton.json", "classical-svm", "SVM: k-means patches + HOG + LBP + "
                    "pixels, RBF on 12,000 Nystroem landmarks (target: 93 % within 5 minutes)",
                    "python bench/classical.py --models svm", "2026-11-30", INTEL, svm)
    yield file_spec("classical-svm-20261130-newton-fp32.json", "classical-svm-fp32", "The same SVM with an fp32 "
                    "kernel map (what precision auto gives without AMX)",
                    "RECGEN_PRECISION=fp32 python bench/classical.py --models svm", "2026-11-30", INTEL, svm)


def detection(secs):
    yield sec_spec(secs, "now", "detect", "detect", "Detection: CenterNet and the classical baseline on 96x96 "
                   "Fashion-MNIST scenes (target: mAP 0.75, 50 images/s)", [
                       ("CenterNet mAP@[.5:.95]", "centernet.map"), ("CenterNet mAP@.5", "centernet.map50"),
                       ("CenterNet training seconds", "centernet.train_seconds"),
                       ("CenterNet images/s, batched", "centernet.images_per_s_batched"),
                       ("CenterNet images/s, one at a time", "centernet.images_per_s_one_at_a_time"),
                       ("classical mAP@[.5:.95]", "classical.map"),
                       ("classical training seconds", "classical.train_seconds")])


def restoration(secs):
    rows = [("inpaint box 25 %", 0, "telea"), ("inpaint strokes 25 %", 1, "telea"), ("denoise sigma 0.2", 2, "nlm"),
            ("superres x2", 3, "bicubic")]
    picks = []
    for label, i, base in rows:
        picks += [(f"{label}: PSNR dB", f"summary[{i}].psnr.recgen"), (f"{label}: {base} PSNR dB",
                                                                          f"summary[{i}].psnr.{base}"),
                  (f"{label}: gain dB", f"summary[{i}].targets.psnr.gain_db"),
                  (f"{label}: judge accuracy restored / clean", f"summary[{i}].targets.accuracy.share_of_clean")]
    yield sec_spec(secs, "now", "restore", "restore-reduced-budget", "Restoration at a sixth of the default "
                   "budget (1 epoch on 2,000 images per class), vs classical baselines", picks)
    for task, base, date, setting in (("inpaint", "telea", "20261129", "--mask-kind box --ratio 0.25"),
                                      ("denoise", "nlm", "20261130", "--sigma 0.2")):
        out = f"runs/bench-{task}"
        cmd = (f"recgen restore train --task {task} --data fashion-mnist --out {out} --threads 2 && recgen restore "
               f"eval {out}/restore/{task}-1 --task {task} --n 500 --seeds 0,1 --judge runs/bench/classify/cnn-1 "
               f"{setting} --json")
        yield file_spec(f"restore-{task}-default-{date}.json", f"restore-{task}", f"Restoration: {task} at the "
                        f"default budget ({setting.replace('--', '')}; target: +{3 if task == 'inpaint' else 2} dB "
                        f"over {base}, 90 % of clean accuracy)", cmd, f"{date[:4]}-{date[4:6]}-{date[6:]}", INTEL, [
                            ("PSNR dB", "methods.recgen.psnr"), ("SSIM", "methods.recgen.ssim"),
                            (f"{base} PSNR dB", f"methods.{base}.psnr"), (f"{base} SSIM", f"methods.{base}.ssim"),
                            ("gain dB", "targets.psnr.gain_db"), ("judge accuracy, restored", "accuracy.recgen"),
                            ("judge accuracy, clean", "accuracy.clean"),
                            ("restored / clean accuracy", "targets.accuracy.share_of_clean"),
                            ("images/s", "methods.recgen.images_per_s")])


def judged(d, prefix="judged."):
    return [(label, prefix + path.removeprefix("judged.")) for label, path in JUDGED]


def eval_spec(file, name, title, command, n):
    return file_spec(file, name, title + f" (n = {n:,})", command, "2026-11-30", INTEL, judged(None),
                     extra=lambda d: fid_ratio(d["judged"]))


def generation(secs):
    r0 = "results[0]."
    diff = ("python bench/generate.py --families diffusion --runs runs/bench-diff/generate/diffusion-1 --judge "
            "runs/bench/classify/cnn-1 --eval-n 1000 --fid-n 200 --fid-steps 10,20,50,250 --fid-samplers dpm")

    def steps(d):
        f = d["results"][0]["fid_by_steps"]
        return {"DPM-Solver++ 20 vs 250 steps, FID change %":
                round(100 * (f["dpm_20"]["fid"] - f["dpm_250"]["fid"]) / f["dpm_250"]["fid"], 1)}

    yield sec_spec(secs, "now", "generate-diffusion", "generate-diffusion", "Diffusion, 2 epochs in fp32: "
                   "sampler speed and FID by steps (target: 20 steps within 10 % of 250)", [
                       ("training seconds", r0 + "train_seconds"),
                       ("DPM-Solver++ 20 steps, images/s", r0 + "sampling.dpm_20_images_per_s"),
                       ("DPM-Solver++ 20 steps, FID (n = 200)", r0 + "fid_by_steps.dpm_20.fid"),
                       ("DPM-Solver++ 250 steps, FID (n = 200)", r0 + "fid_by_steps.dpm_250.fid"),
                       *judged(None, r0 + "judged.")[:6]], extra=steps)
    e = "recgen generate eval {run} --judge runs/bench/classify/cnn-1 --n {n} {x}--json"
    d3 = "runs/bench-diff-bf16/generate/diffusion-1"
    d6 = "runs/bench-diff6/generate/diffusion-1"
    train = "recgen generate train --model diffusion --data fashion-mnist --class-conditional {x}&& "
    yield eval_spec("generate-eval-diffusion-bf16train-20261130.json", "generate-eval-diffusion",
                    "Diffusion at the default budget (3 epochs in bf16), judged",
                    train.format(x="--out runs/bench-diff-bf16 ") + e.format(run=d3, n=2000, x=""), 2000)
    yield eval_spec("generate-eval-diffusion-bf16-n10000-20261130.json", "generate-eval-diffusion-n10000",
                    "Diffusion at the default budget (3 epochs in bf16), judged, bf16 sampling",
                    e.format(run=d3, n=10000, x="--precision bf16 "), 10000)
    yield eval_spec("generate-eval-diffusion-6epochs-n2000-20261130.json", "generate-eval-diffusion-6epochs",
                    "Diffusion at 6 epochs (about 32 minutes), judged",
                    train.format(x="--epochs 6 --out runs/bench-diff6 ") + e.format(run=d6, n=2000,
                                                                                     x="--precision bf16 "), 2000)
    yield eval_spec("generate-eval-diffusion-6epochs-n10000-20261130.json", "generate-eval-diffusion-6epochs-n10000",
                    "Diffusion at 6 epochs (about 32 minutes), judged", e.format(run=d6, n=10000,
                                                                                  x="--precision bf16 "), 10000)
    yield from cas_and_gan(secs, r0)
    yield from pixelcnn_and_vae(secs, r0)


def cas_and_gan(secs, r0):
    rows = load("cas-diffusion-6epochs-n10000-20261130.jsonl")
    rec = [r for r in rows if r["classifier"] == "recognizer"]
    small = next(r for r in rows if r["classifier"] == "small")
    yield dict(name="cas-diffusion-6epochs", title="CAS of the 6-epoch diffusion model at n = 10,000: the small "
               "CAS classifier and the recognizer-sized one (target: 88 %)",
               command="python bench/cas.py runs/bench-diff6/generate/diffusion-1 --n 10000 --precision bf16 "
               "--cache runs/cas-samples-diff6.npz --budgets small:800,recognizer:2400 --classifier-seeds 0,1,2",
               date="2026-11-30", machine=INTEL, details={"source": "bench/results/cas-diffusion-6epochs-n10000-"
                                                           "20261130.jsonl", "rows": rows},
               figures={"CAS, small classifier": small["cas"], "real images, small classifier": small["cas_real"],
                        "CAS, recognizer-sized classifier (mean of 3 seeds)":
                            round(statistics.mean(r["cas"] for r in rec), 4),
                        "CAS, recognizer-sized, population sd over seeds":
                            round(statistics.pstdev(r["cas"] for r in rec), 4),
                        "real images, recognizer-sized (mean of 3 seeds)":
                            round(statistics.mean(r["cas_real"] for r in rec), 4)})
    gan = [("training seconds", r0 + "train_seconds"), ("decoder images/s, fp32", r0 + "sampling.decoder_images_per_s"),
           *judged(None, r0 + "judged.")[:6]]
    yield sec_spec(secs, "now", "generate-gan", "generate-gan", "GAN at the default budget (8 epochs in bf16, "
                   "mode-seeking term), judged on 1,000 samples", gan[:2] + [
                       ("decoder images/s, bf16", r0 + "sampling.decoder_bf16_images_per_s")] + gan[2:])
    cmd = "python bench/generate.py --families gan --judge runs/bench/classify/cnn-1 --eval-n 1000 --out {}"
    yield file_spec("generate-20261130-060753.json", "generate-gan-no-mode-seeking", "GAN as the default but "
                    "without the mode-seeking term", cmd.format("runs/bench-gan8c"), "2026-11-30", INTEL, gan)
    yield file_spec("generate-20261130-135937.json", "generate-gan-decoder", "GAN decoder speed with "
                    "Generator.infer (folded BatchNorm, sub-pixel last layer)",
                    "python bench/generate.py --runs runs/bench-gan8ms/generate/gan-1 --no-record", "2026-11-30",
                    INTEL, [("images/s, fp32", r0 + "sampling.decoder_images_per_s"),
                            ("images/s, bf16", r0 + "sampling.decoder_bf16_images_per_s")])
    yield file_spec("generate-20261130-002415.json", "generate-decoder-speed", "GAN and VAE decoder speed, fp32 "
                    "and bf16 (target: 5,000 images/s)", "python bench/generate.py --speed-only --families gan,vae "
                    "--no-record --out /tmp/speedruns", "2026-11-30", INTEL, [
                        ("GAN images/s, fp32", "results[0].sampling.decoder_images_per_s"),
                        ("GAN images/s, bf16", "results[0].sampling.decoder_bf16_images_per_s"),
                        ("VAE images/s, fp32", "results[1].sampling.decoder_images_per_s"),
                        ("VAE images/s, bf16", "results[1].sampling.decoder_bf16_images_per_s")])


def pixelcnn_and_vae(secs, r0):
    pc = [("training seconds", r0 + "train_seconds"), ("test bits/dim", r0 + "eval.bpd"),
          ("sampling images/s", r0 + "sampling.images_per_s"), *judged(None, r0 + "judged.")[:6]]
    yield sec_spec(secs, "now", "generate-pixelcnn", "generate-pixelcnn", "PixelCNN at the default budget (2 epochs "
                   "in bf16, dilated, classifier-free guidance 3), judged on 200 samples", pc)
    yield file_spec("generate-20261130-105659.json", "generate-pixelcnn-unguided", "PixelCNN, dilated, unguided "
                    "(judged on 200 samples)", "python bench/generate.py --families pixelcnn --judge "
                    "runs/bench/classify/cnn-1 --eval-n 1000 --out runs/bench-pcnn-dil", "2026-11-30", INTEL, pc)
    yield file_spec("generate-eval-pixelcnn-guidance3-20261130.json", "generate-eval-pixelcnn-guidance3",
                    "PixelCNN with classifier-free guidance 3, judged (n = 1,000)",
                    "recgen generate eval runs/bench-pcnn-cfg/generate/pixelcnn-1 --judge runs/bench/classify/cnn-1 "
                    "--n 1000 --guidance 3 --json", "2026-11-30", INTEL, judged(None, "")[:6])
    yield sec_spec(secs, "now", "generate-vae", "generate-vae", "VAE at the default budget (10 epochs), judged on "
                   "10,000 samples", [("training seconds", r0 + "train_seconds"), ("test bits/dim", r0 + "eval.bpd"),
                                      ("decoder images/s", r0 + "sampling.decoder_images_per_s"),
                                      *judged(None, r0 + "judged.")[:8]])
    yield file_spec("generate-20261122-054454.json", "generate-text-vae", "Free-text conditioning: a text-conditional "
                    "VAE, 3 epochs (chance: 10 %)", "python bench/generate.py --families vae --text --epochs vae=3 "
                    "--judge runs/bench/classify/cnn-1 --out runs/bench-text", "2026-11-22", INTEL, [
                        ("intended class, training phrasings", r0 + "recognizability.classes"),
                        ("intended class, held-out phrasings", r0 + "recognizability.heldout_prompts"),
                        ("training seconds", r0 + "train_seconds")])


def boot_sd(arms, i):
    """Population sd over seeds of arm i's minority (ankle boot) recall gain over the real-only arm, points."""
    x0, xi = arms[0]["recall_per_seed"]["ankle boot"], arms[i]["recall_per_seed"]["ankle boot"]
    return round(100 * statistics.pstdev(b - a for a, b in zip(x0, xi)), 2)


def augmentation(secs):
    low = "recgen augment --data fashion-mnist --real-per-class 10 --precision bf16 --ratios 0,16 --seeds 5"
    yield file_spec("augment-low_data-5seeds-20261204.json", "augment-low-data", "Augmentation at 10 real images per "
                    "class, 5 seeds (target: +5 points)", low, "2026-12-04", AMD, [
                        ("real only, test accuracy", "arms[0].accuracy_mean"),
                        ("x16 synthetic, test accuracy", "arms[1].accuracy_mean"),
                        ("x16 gain, points", "arms[1].gain_points"), ("x16 gain, sd over seeds", "arms[1].gain_std"),
                        ("ratio chosen on validation images", "best_ratio")])
    yield sec_spec(secs, "now", "augment", "augment", "`recgen augment` at its two settings, 3 seeds each", [
        ("10 real/class: x16 gain, points", "low_data.best_gain_points"),
        ("1:10: x5 boot recall gain, points", "imbalance.minority_recall_gain_points.{5.0}"),
        ("1:10: x9 boot recall gain, points", "imbalance.minority_recall_gain_points.{9.0}"),
        ("1:10: oversampling alone, boot recall gain, points", "imbalance.oversampled.minority_recall_gain_points"),
        ("1:10: ratio chosen on validation images", "imbalance.best_ratio")])
    imb = ("recgen augment --data fashion-mnist --real-per-class 100 --imbalance 0.1 --minority 'ankle boot' "
           "--ratios 0,5,9 --seeds 5")
    per_seed = load("augment-imbalance-5seeds-perseed-20261204.json")["seeds"]
    yield file_spec("augment-imbalance-5seeds-20261204.json", "augment-imbalance", "Augmentation at a 1:10 imbalance "
                    "(10 ankle boots), 5 seeds, with --oversample and --generator-balance (target: +10 points "
                    "minority recall)", imb, "2026-12-04", AMD, [
                        ("real only: boot recall", "imbalance.arms[0].recall_mean.ankle boot"),
                        ("real only: test accuracy", "imbalance.arms[0].accuracy_mean"),
                        ("x5: boot recall gain, points", "imbalance.minority_recall_gain_points.{5.0}"),
                        ("x5: test accuracy", "imbalance.arms[1].accuracy_mean"),
                        ("x9: boot recall gain, points", "imbalance.minority_recall_gain_points.{9.0}"),
                        ("oversampling alone: boot recall gain, points",
                         "imbalance.oversampled.minority_recall_gain_points"),
                        ("x5 over oversampling alone: boot recall, points",
                         "imbalance.over_oversampled.{5.0}.minority_recall_points")],
                    extra=lambda d: {"x5: boot recall gain, population sd over seeds": boot_sd(d["imbalance"]["arms"], 1),
                                     "ratio chosen per seed on validation images: mean boot recall gain, points":
                                         round(statistics.mean(s["gain_points"] for s in per_seed), 2)})
    weak = "--steps 500 --recognizer-augment flip+crop"
    yield file_spec("augment-imbalance-oversample-20261202.json", "augment-imbalance-no-repeats", "Augmentation at "
                    "1:10 with 90 synthetic boots and no repeats of the real ones (3 seeds)",
                    imb.replace("0,5,9 --seeds 5", "0,9 --no-oversample --no-generator-balance"), "2026-12-02", AMD,
                    [("x9: boot recall gain, points", "arms[1].recall_gain_points.ankle boot"),
                     ("oversampling alone: boot recall gain, points", "oversampled.minority_recall_gain_points")])
    yield file_spec("augment-bench-flipcrop500-20261201.json", "augment-weak-recognizer", "Augmentation against a "
                    "weaker real-only recognizer (500 steps, no erasing; 3 seeds)",
                    f"recgen augment --data fashion-mnist {weak} ... (both settings; details)", "2026-12-01", INTEL, [
                        ("10 real/class: x16 gain, points", "low_data.best_gain_points"),
                        ("1:10: boot recall gain, points", "imbalance.minority_recall_gain_points.{9.0}")])
    yield file_spec("augment-imbalance-oversample-flipcrop500-20261202.json", "augment-weak-recognizer-oversampled",
                    "Oversampling alone with the weaker recognizer (1:10, 3 seeds)",
                    imb.replace("0,5,9 --seeds 5", f"0 {weak}"), "2026-12-02", AMD,
                    [("boot recall gain, points", "oversampled.minority_recall_gain_points")])
    yield file_spec("augment-low_data-50-20261201.json", "augment-50-per-class", "Augmentation at 50 real images per "
                    "class (3 seeds)", f"recgen augment --data fashion-mnist {weak} --real-per-class 50 --ratios "
                    "0,1,4 --precision bf16", "2026-12-01", INTEL, [
                        ("real only, test accuracy", "arms[0].accuracy_mean"), ("x1 gain, points", "arms[1].gain_points"),
                        ("x4 gain, points", "arms[2].gain_points")])


def other(secs):
    demo = [("wall seconds", "wall_seconds"), ("recognizer test accuracy", "{recognizer test accuracy}"),
            ("VAE recognizability", "recognizability"), ("judge FID", "{FID (judge space)}"),
            ("FID floor (real vs real)", "{FID floor (real vs real)}"),
            ("CAS (trained on samples only)", "{CAS (trained on samples only)}"),
            ("CAS floor (real images)", "{CAS floor (same budget, real images)}"),
            ("augmentation gain at 10 real/class, points", "{augmentation gain at 10 real/class (points)}")]
    title = "`recgen demo`: the whole chain (target: about 10 minutes)"
    yield sec_spec(secs, "demo-intel", "demo", "demo", title, demo)
    yield sec_spec(secs, "now", "demo", "demo", title, demo)
    yield sec_spec(secs, "now", "serve-soak", "serve-soak", "`recgen serve` on loopback: soak at the sustainable "
                   "rate, then a 4x burst (tiny CNN, one 28x28 PNG a request)", [
                       ("sustainable rate, requests/s", "sustainable_rate_per_s"),
                       ("soak: seconds", "soak.seconds"), ("soak: p50 ms", "soak.p50_ms"),
                       ("soak: p99 ms", "soak.p99_ms"), ("soak: errors", "soak.errors"),
                       ("4x burst: answered 503", "burst_4x.status_503"), ("4x burst: errors", "burst_4x.errors"),
                       ("server memory before, MB", "server_rss_mb.before"),
                       ("server memory after the burst, MB", "server_rss_mb.after_burst")])
    picks = []
    for data in ("digits", "fashion-mnist-200", "colour3"):
        picks += [(f"{data}: default accuracy", f"datasets.{data}.runs.default.accuracy"),
                  (f"{data}: old fixed defaults' accuracy", f"datasets.{data}.runs.fixed.accuracy"),
                  (f"{data}: best tuned accuracy", f"datasets.{data}.best_accuracy"),
                  (f"{data}: default / best tuned accuracy", f"datasets.{data}.default_over_best"),
                  (f"{data}: default / best tuned wall time", f"datasets.{data}.default_wall_over_best")]
    yield file_spec("small-data-defaults-20261205.json", "small-data-defaults", "First runs on small data: "
                    "`recgen classify train` with no tuning flags (target: 0.8x the best tuned accuracy in the same "
                    "wall time)", "python bench/small_data_defaults.py --datasets digits,fashion-mnist-200 && python "
                    "bench/small_data_defaults.py --datasets colour3", "2026-12-05",
                    INTEL.replace("no GPU,", "no GPU, precision auto = bf16,"), picks, peaks=(361, 1455))
    runs = {"recgen --help": ([8.0, 9.5, 10.5], [0.43, 0.32, 0.31]),
            "recgen data list": ([15.5, 12.6, 11.2], [0.53, 0.65, 0.68]),
            "recgen classify train --help": ([14.9, 15.5, 14.4], [0.58, 0.44, 0.42]),
            "recgen classify train --bogus": ([13.7, 11.0, 13.0], [0.35, 0.39, 0.23])}
    yield dict(name="cli-startup", title="Command-line start-up without torch (median of 3 runs; target: about a "
               "second)", command="python -m recgen ARGS > /dev/null (3 runs each, at commit 8d73450 and cb879ca)",
               date="2026-12-05", machine=INTEL,
               figures={f"{cmd}, seconds": statistics.median(after) for cmd, (_, after) in runs.items()} | {
                   f"{cmd}, seconds before (torch at start)": statistics.median(before)
                   for cmd, (before, _) in runs.items()},
               details={"source": "transcribed from the table of docs/BENCHMARKS.md (no JSON was kept); measured "
                                  "while other sessions shared the machine (load about 6)",
                        "seconds_before_after": runs})


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "HEAD")
