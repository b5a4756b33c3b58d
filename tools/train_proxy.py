"""Train CloFormer-XXS (the authors' architecture, 16 classes) on the proxy task and ship the weights.

    python -m tools.train_proxy                              # the shipped model's recipe, ~25 min on 2 cores
    python -m tools.train_proxy --out cloformer/weights/cloformer_xxs_proxy.safetensors   # replace the shipped one

Defaults are the shipped model card's recipe (steps, batch, seed). Output goes to
outputs/proxy-<time>/cloformer_xxs_proxy.safetensors unless --out names a file.

Data: a pool of random crops from the *training* regions of the 16 photos (compress/proxy.py), each crop
resized to the input size with PIL bicubic as evaluation does; heavy augmentation on top (random
scale/aspect crops, flips, colour jitter, random grayscale, random erasing, Mixup/CutMix). Optimiser:
AdamW, warm-up then cosine, label smoothing, gradient clipping. The held-out `proxy-val` split
(disjoint pixels) is evaluated at the end, and the weights (official key format, float32 .safetensors)
are written with a model card JSON beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import cloformer
import reference_np as rn
from cloformer.registry import SHIPPED
from compress import proxy
from compress.augment import augment, mix, random_erase
from compress.evaluate.job import evaluate, torch_predictor
from compress.progress import Progress

# the shipped model's recipe, from its model card: one source for the defaults
CARD_RECIPE = {k: cloformer.model_card("proxy")[k] for k in ("train_steps", "batch", "seed")}


def make_pool(n_per_class: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [N,size,size,3] crops from the training regions and their labels."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for label, img in enumerate(proxy.photos()):
        for box in proxy.random_boxes(img, "train", n_per_class, rng, (proxy.TRAIN_SIDE, (3 / 4, 4 / 3))):
            xs.append(np.asarray(img.crop(tuple(int(v) for v in box)).resize((size, size), Image.BICUBIC)))
            ys.append(label)
    return np.stack(xs), np.asarray(ys)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=CARD_RECIPE["seed"])
    ap.add_argument("--size", type=int, default=64, help="input size (multiple of 32)")
    ap.add_argument("--steps", type=int, default=CARD_RECIPE["train_steps"])
    ap.add_argument("--batch", type=int, default=CARD_RECIPE["batch"])
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--warmup", type=float, default=0.05, help="fraction of steps")
    ap.add_argument("--pool-per-class", type=int, default=1500)
    ap.add_argument("--drop-path", type=float, default=0.05)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None,
                    help="weights file (default: outputs/proxy-<time>/...; never the shipped file unless named)")
    args = ap.parse_args(argv)
    if args.out is None:
        args.out = Path("outputs") / f"proxy-{time.strftime('%Y%m%d-%H%M%S')}" / SHIPPED["proxy"][1].name
    rn.specs.check_input_size(args.size, args.size)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(args.seed)
    t0 = time.time()

    pool_x, pool_y = make_pool(args.pool_per_class, args.size, args.seed)
    pool_x = torch.from_numpy(pool_x).permute(0, 3, 1, 2).float()  # [N,3,S,S], 0..255
    pool_y = torch.from_numpy(pool_y)
    mean = torch.tensor(rn.specs.IMAGENET_MEAN).view(1, 3, 1, 1) * 255
    std = torch.tensor(rn.specs.IMAGENET_STD).view(1, 3, 1, 1) * 255
    n_cls = len(proxy.CLASSES)
    model = cloformer.create_model("cloformer_xxs", num_classes=n_cls, drop_path_rate=args.drop_path).train()
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    warm = max(1, int(args.warmup * args.steps))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * (
        0.5 * (1 + np.cos(np.pi * min(1.0, max(0, s - warm) / max(1, args.steps - warm)))) * 0.99 + 0.01))
    bar = Progress(range(args.steps), desc="train proxy", unit="step")
    for _step in bar:
        idx = torch.randint(0, len(pool_y), (args.batch,), generator=g)
        x = (augment(pool_x[idx], g) - mean) / std
        x, t = mix(random_erase(x, g), pool_y[idx], g, 0.1, n_cls)
        loss = torch.sum(-t * F.log_softmax(model(x), dim=-1), dim=-1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{sched.get_last_lr()[0]:.2e}")
    train_s = time.time() - t0

    model.eval()
    res = evaluate(torch_predictor(model), proxy.val_source(args.size), backend="torch")
    print(f"held-out proxy-val: top-1 {res.top1:.2f}%  top-5 {res.top5:.2f}%  (n={res.n}, chance "
          f"{100 / n_cls:.2f}%), trained {train_s / 60:.1f} min")
    weights = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rn.save_weights(weights, args.out, metadata={"variant": "cloformer_xxs", "task": "cloformer-proxy-16"})
    card = {
        "name": "proxy", "variant": "cloformer_xxs", "format": "official CloFormer state_dict keys, float32",
        "task": "proxy-16: which of 16 scikit-image photographs a crop comes from (compress/proxy.py)",
        "classes": list(proxy.CLASSES), "num_classes": n_cls, "input_size": args.size,
        "preprocessing": {"resize_shorter": int(args.size / rn.specs.CROP_PCT), "crop": args.size,
                          "interpolation": "bicubic", "mean": rn.specs.IMAGENET_MEAN, "std": rn.specs.IMAGENET_STD},
        "heldout": "proxy-val: 50 crops per class from the right 25% of each photo (no pixel shared with training)",
        "heldout_n": res.n, "heldout_top1": res.top1, "heldout_top5": res.top5,
        "train_seconds": round(train_s, 1), "train_steps": args.steps, "batch": args.batch, "seed": args.seed,
        "training_command": "python -m tools.train_proxy " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__, "photo_sha256": proxy.photo_hashes(),
        "weights_file": args.out.name, "sha256": rn.weights_sha256(weights),
        "file_sha256": __import__("hashlib").sha256(args.out.read_bytes()).hexdigest(),
    }
    card_path = args.out.with_suffix(".json")
    tmp = card_path.with_name(card_path.name + ".tmp")
    tmp.write_text(json.dumps(card, indent=2) + "\n")
    os.replace(tmp, card_path)
    print(f"wrote {args.out} and {card_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
