"""Train CloFormer-XXS (the authors' architecture, 16 classes) on the proxy task and ship the weights.

    python -m tools.train_proxy --out outputs/p1/cloformer_xxs_proxy.safetensors          # stage 1, from scratch
    python -m tools.train_proxy --init outputs/p1/cloformer_xxs_proxy.safetensors ...      # a further stage
    python -m tools.train_proxy --out ... --resume      # continue an interrupted run from its training state

The shipped model's stages are its model card's `training` list (commands, steps, seconds, machine); running
them in order reproduces it. Output goes to outputs/proxy-<time>/cloformer_xxs_proxy.safetensors unless --out
names a file.

Data: a pool of random crops from the *training* regions of the 16 photos (compress/data/proxy.py), each crop
resized to the input size with PIL bicubic; augmentation on top (random flips, colour jitter, random grayscale,
random erasing, Mixup/CutMix, each with its probability). Optimiser: AdamW, warm-up then cosine, label
smoothing, gradient clipping, optionally an exponential moving average of the weights (the EMA is what is
evaluated and written). The held-out `proxy-val` split (disjoint pixels) is evaluated at the end, and the
weights (official key format, float32 .safetensors) are written with a model card JSON beside them.

Every --checkpoint-every steps the whole training state (weights, EMA, optimiser, schedule, random generator,
step, seconds so far) is written atomically to <out>.state.pt; --resume continues from it with the same recipe
(a different recipe is refused) and ends bit-for-bit where an uninterrupted run would.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import cloformer
import reference_np as rn
from cloformer.checkpoint import load_checkpoint, read_state_dict
from cloformer.registry import SHIPPED
from compress.atomic import write_text_atomic
from compress.data import proxy
from compress.data.augment import augment, mix, random_erase, smoothed
from compress.evaluate.job import evaluate, torch_predictor
from compress.progress import Progress
from compress.runtime import cpu_isa, cpu_model

# the recipe's knobs: a resumed run must match its state file on every one of these
RECIPE = ("seed", "size", "steps", "batch", "lr", "weight_decay", "warmup", "pool_per_class", "drop_path",
          "mix_prob", "erase_prob", "smoothing", "ema", "init_sha256")


def make_pool(n_per_class: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [N,size,size,3] crops from the training regions and their labels."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for label, img in enumerate(proxy.photos()):
        for box in proxy.random_boxes(img, "train", n_per_class, rng, (proxy.TRAIN_SIDE, (3 / 4, 4 / 3))):
            xs.append(np.asarray(img.crop(tuple(int(v) for v in box)).resize((size, size), Image.BICUBIC)))
            ys.append(label)
    return np.stack(xs), np.asarray(ys)


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=64, help="input size (multiple of 32)")
    ap.add_argument("--steps", type=int, default=1300)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--warmup", type=float, default=0.05, help="fraction of steps")
    ap.add_argument("--pool-per-class", type=int, default=1500)
    ap.add_argument("--drop-path", type=float, default=0.05)
    ap.add_argument("--mix-prob", type=float, default=1.0, help="probability a batch is Mixup/CutMix-ed")
    ap.add_argument("--erase-prob", type=float, default=0.25, help="random erasing probability per image")
    ap.add_argument("--smoothing", type=float, default=0.1, help="label smoothing")
    ap.add_argument("--ema", type=float, default=0.0, help="EMA decay of the weights (0: none)")
    ap.add_argument("--init", type=Path, default=None, help="start from these weights (official keys)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--checkpoint-every", type=int, default=100, help="steps between training-state files")
    ap.add_argument("--resume", action="store_true", help="continue from <out>.state.pt")
    ap.add_argument("--stop-after", type=int, default=None,
                    help="end this sitting after this many steps, its state saved (continue with --resume)")
    ap.add_argument("--out", type=Path, default=None,
                    help="weights file (default: outputs/proxy-<time>/...; never the shipped file unless named)")
    args = ap.parse_args(argv)
    if args.out is None:
        if args.resume:
            ap.error("--resume needs --out (the run's weights file, beside which its state file lies)")
        args.out = Path("outputs") / f"proxy-{time.strftime('%Y%m%d-%H%M%S')}" / SHIPPED["proxy"][1].name
    rn.specs.check_input_size(args.size, args.size)
    # probabilities and fractions; an EMA decay of 1 would never move
    for name in ("mix_prob", "erase_prob", "smoothing", "ema"):
        value, top = getattr(args, name), "1)" if name == "ema" else "1]"
        if not (0.0 <= value < 1.0 if name == "ema" else 0.0 <= value <= 1.0):
            ap.error(f"--{name.replace('_', '-')} must be in [0, {top}; got {value}")
    args.init_sha256 = rn.weights_sha256(rn.load_weights(args.init)) if args.init else None
    return args


def state_path(out: Path) -> Path:
    return out.with_name(out.name + ".state.pt")


def save_state(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def lr_factor(step: int, steps: int, warm: int) -> float:
    """Linear warm-up, then cosine to 1% of the peak."""
    cos = 0.5 * (1 + np.cos(np.pi * min(1.0, max(0, step - warm) / max(1, steps - warm))))
    return min(1.0, (step + 1) / warm) * (cos * 0.99 + 0.01)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    recipe = {k: getattr(args, k) for k in RECIPE}
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(args.seed)

    pool_x, pool_y = make_pool(args.pool_per_class, args.size, args.seed)
    pool_x = torch.from_numpy(pool_x).permute(0, 3, 1, 2).float()  # [N,3,S,S], 0..255
    pool_y = torch.from_numpy(pool_y)
    mean = torch.tensor(rn.specs.IMAGENET_MEAN).view(1, 3, 1, 1) * 255
    std = torch.tensor(rn.specs.IMAGENET_STD).view(1, 3, 1, 1) * 255
    n_cls = len(proxy.CLASSES)
    model = cloformer.create_model("cloformer_xxs", num_classes=n_cls, drop_path_rate=args.drop_path).train()
    if args.init:
        load_checkpoint(model, read_state_dict(args.init), str(args.init))
    ema = cloformer.create_model("cloformer_xxs", num_classes=n_cls).eval() if args.ema else None
    if ema is not None:
        ema.load_state_dict(model.state_dict())
        ema.requires_grad_(False)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    warm = max(1, int(args.warmup * args.steps))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, args.steps, warm))
    start, seconds_before, history = 0, 0.0, []
    spath = state_path(args.out)
    if args.resume:
        if not spath.is_file():
            raise SystemExit(f"--resume: no training state at {spath}")
        st = torch.load(spath, weights_only=False)
        if st["recipe"] != recipe:
            diff = {k: (st["recipe"].get(k), recipe[k]) for k in recipe if st["recipe"].get(k) != recipe[k]}
            raise SystemExit(f"--resume: {spath} was written by another recipe (state, now): {diff}")
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        sched.load_state_dict(st["sched"])
        g.set_state(st["generator"])
        torch.set_rng_state(st["torch_rng"])
        if ema is not None:
            ema.load_state_dict(st["ema"])
        start, seconds_before, history = st["step"], st["seconds"], st["history"]
        print(f"resumed {spath} at step {start} of {args.steps}", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)

    t0 = time.time()
    bar = Progress(range(start, args.steps), desc="train proxy", unit="step", initial=start, total=args.steps)
    for step in bar:
        idx = torch.randint(0, len(pool_y), (args.batch,), generator=g)
        x = random_erase((augment(pool_x[idx], g) - mean) / std, g, args.erase_prob)
        # (no draw when every batch is mixed: the generator's stream then is the first stage's, which is reproduced)
        if args.mix_prob >= 1.0 or float(torch.rand(1, generator=g)) < args.mix_prob:
            x, t = mix(x, pool_y[idx], g, args.smoothing, n_cls)
        else:
            t = smoothed(pool_y[idx], n_cls, args.smoothing)
        loss = torch.sum(-t * F.log_softmax(model(x), dim=-1), dim=-1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        if ema is not None:
            with torch.no_grad():
                for e, p in zip(ema.state_dict().values(), model.state_dict().values(), strict=True):
                    e.copy_(e * args.ema + p * (1 - args.ema)) if e.is_floating_point() else e.copy_(p)
        history.append(round(loss.item(), 4))
        bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{sched.get_last_lr()[0]:.2e}")
        done = step + 1
        sitting_over = args.stop_after is not None and done - start >= args.stop_after
        if done % args.checkpoint_every == 0 or done == args.steps or sitting_over:
            save_state(spath, {"recipe": recipe, "step": done, "seconds": seconds_before + time.time() - t0,
                               "model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                               "generator": g.get_state(), "torch_rng": torch.get_rng_state(),
                               "ema": ema.state_dict() if ema is not None else None, "history": history})
        if sitting_over and done < args.steps:
            bar.close()
            print(f"stopped at step {done} of {args.steps}; continue with --resume (state: {spath})",
                  file=sys.stderr)
            return 0
    train_s = seconds_before + time.time() - t0

    final = (ema if ema is not None else model).eval()
    res = evaluate(torch_predictor(final), proxy.val_source(args.size), backend="torch")
    print(f"held-out proxy-val: top-1 {res.top1:.2f}%  top-5 {res.top5:.2f}%  (n={res.n}, chance "
          f"{100 / n_cls:.2f}%), trained {train_s / 60:.1f} min")
    weights = {k: v.detach().numpy() for k, v in final.state_dict().items()}
    rn.save_weights(weights, args.out, metadata={"variant": "cloformer_xxs", "task": "cloformer-proxy-16"})
    write_card(args, res, train_s, weights, argv)
    return 0


def drop_sitting_flags(argv: list[str]) -> list[str]:
    """The command without --resume and --stop-after N: how a run was split into sittings is not its recipe."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--stop-after":
            skip = True
        elif a != "--resume" and not a.startswith("--stop-after="):
            out.append(a)
    return out


def write_card(args: argparse.Namespace, res: Any, train_s: float, weights: dict[str, np.ndarray],
               argv: list[str] | None) -> None:
    """The model card beside the weights: the task, preprocessing, held-out accuracy and every training stage
    (an --init stage appends itself to its starting weights' card's stages)."""
    n_cls = len(proxy.CLASSES)
    cmd = drop_sitting_flags(argv if argv is not None else sys.argv[1:])
    stage = {"command": "python -m tools.train_proxy " + " ".join(shlex.quote(a) for a in cmd),
             "steps": args.steps, "batch": args.batch, "seconds": round(train_s, 1),
             "machine": f"{cpu_model()['cpu']} ({cpu_isa()}), {args.threads} threads",
             "heldout_top1": res.top1}
    stages = []
    if args.init:
        init_card = args.init.with_suffix(".json")
        if not init_card.is_file():
            raise SystemExit(f"--init {args.init}: its model card {init_card} is missing (the stages before it)")
        stages = json.loads(init_card.read_text())["training"]
    card = {
        "name": "proxy", "variant": "cloformer_xxs", "format": "official CloFormer state_dict keys, float32",
        "task": "proxy-16: which of 16 scikit-image photographs a crop comes from (compress/data/proxy.py)",
        "classes": list(proxy.CLASSES), "num_classes": n_cls, "input_size": args.size,
        "preprocessing": {"resize_shorter": int(args.size / rn.specs.CROP_PCT), "crop": args.size,
                          "interpolation": "bicubic", "mean": rn.specs.IMAGENET_MEAN, "std": rn.specs.IMAGENET_STD},
        "heldout": "proxy-val: 50 crops per class from the right 25% of each photo (no pixel shared with training)",
        "heldout_n": res.n, "heldout_top1": res.top1, "heldout_top5": res.top5,
        "training": [*stages, stage],
        "train_steps": sum(s["steps"] for s in [*stages, stage]),
        "train_seconds": round(sum(s["seconds"] for s in [*stages, stage]), 1),
        "torch": torch.__version__, "photo_sha256": proxy.photo_hashes(),
        "weights_file": args.out.name, "sha256": rn.weights_sha256(weights),
        "file_sha256": hashlib.sha256(args.out.read_bytes()).hexdigest(),
    }
    card_path = write_text_atomic(args.out.with_suffix(".json"), json.dumps(card, indent=2) + "\n")
    print(f"wrote {args.out} and {card_path}")


if __name__ == "__main__":
    sys.exit(main())
