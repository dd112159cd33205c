"""One-off: two more records from raw result files, for figures that stood in code comments (run once).

    python bench/convert_legacy_extra.py
"""

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
INTEL = {"cpu": "Intel(R) Xeon(R) Processor", "cores": 2, "gpu": None, "fp32_gflops": None, "bf16_gflops": None,
         "precision_auto": None, "torch": "2.13.0+cpu", "python": "3.11.7"}


def write(rec: dict, source: str, data) -> None:
    rec = {**rec, "machine": INTEL, "details": {"source": f"bench/results/{source}", "data": data}}
    (RESULTS / f"{rec['name']}-{rec['date'].replace('-', '')}.json").write_text(json.dumps(rec, indent=2) + "\n")


src = "pixelcnn-guidance-20261130.jsonl"
rows = [json.loads(x) for x in (RESULTS / src).read_text().splitlines() if x.strip()]
write({"name": "generate-pixelcnn-guidance", "title": "PixelCNN (2 epochs, trained with condition dropout): "
       "recognizability by classifier-free guidance scale (200 samples each)",
       "command": "python bench/temperature.py runs/bench-pcnn-cfg/generate/pixelcnn-1 --judge "
       "runs/bench/classify/cnn-1 --temperatures 1.0 --guidances 1,1.5,2,3,4 --n 200", "date": "2026-11-30",
       "figures": {f"recognizability at guidance {r['guidance']:g}": r["recognizability"] for r in rows}}, src, rows)

src = "augment-low_data-diffusion400-20261130.json"
d = json.loads((RESULTS / src).read_text())
write({"name": "augment-diffusion-400-steps", "title": "Augmentation at 10 real images per class with a diffusion "
       "generator stopped at 400 steps (before it replays its subset; 3 seeds, 500-step flip+crop recognizer)",
       "command": "recgen augment --data fashion-mnist --steps 500 --recognizer-augment flip+crop --real-per-class 10 "
       "--generator-model diffusion --generator-steps 400 --generator-augment none --ratios 0,4,16",
       "date": "2026-11-30",
       "figures": {"real only, test accuracy": round(d["arms"][0]["accuracy_mean"], 4),
                   **{f"x{a['ratio']:g}: {k}": round(a[v], 4) for a in d["arms"][1:]
                      for k, v in (("gain, points", "gain_points"), ("near-copy share", "copy_rate"))}}}, src, d)
