"""Is a checkpoint trained out? Fine-tune it with compress.prune's own recipe, applied to the unpruned model
(distillation from a frozen copy of itself, labels on; the prune job's steps, batch, learning rate, seed and
fine-tuning images), and print the change in top-1 on the validation data.

    python -m tools.check_converged                                   # the shipped proxy, the prune defaults
    python -m tools.check_converged --checkpoint PATH --json out.json

A trained-out model moves by at most MAX_CHANGE_PT. One that gains more is undertrained: any pruned student
fine-tuned the same way gets that gain too, and its "drop" hides what pruning cost. Exit status 0 when the change
is within MAX_CHANGE_PT, 1 when it is not.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch

from compress import loading
from compress.data import Images, Preprocess
from compress.data.sources import resolve_source
from compress.distill import finetune
from compress.evaluate.job import evaluate, torch_predictor
from compress.settings import PruneSettings

MAX_CHANGE_PT = 0.5  # |top-1 change| of a trained-out model under the prune recipe
PRUNE_DEFAULTS = PruneSettings()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="cloformer_xxs", help="variant")
    ap.add_argument("--checkpoint", default="proxy", help="'proxy' (shipped) or a weights file")
    ap.add_argument("--data", default="proxy-train", help="fine-tuning images (compress.prune's default)")
    ap.add_argument("--val", default="proxy-val", help="validation images")
    ap.add_argument("--steps", type=int, default=PRUNE_DEFAULTS.finetune_steps)
    ap.add_argument("--batch", type=int, default=PRUNE_DEFAULTS.finetune_batch)
    ap.add_argument("--lr", type=float, default=PRUNE_DEFAULTS.lr)
    ap.add_argument("--seed", type=int, default=PRUNE_DEFAULTS.seed)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args(argv)

    loaded = loading.load(args.model, args.checkpoint)
    size = loaded.trained_size
    val = Images.of(resolve_source(args.val, loaded.transform))
    train = Images.of(resolve_source(args.data, Preprocess.from_card(loaded.model.pretrained_cfg, size)))
    before = evaluate(torch_predictor(loaded.model), val, backend="torch")
    student, teacher = copy.deepcopy(loaded.model), loaded.model
    torch.manual_seed(args.seed)
    t0 = time.time()
    recipe = PruneSettings(finetune_steps=args.steps, finetune_batch=args.batch, lr=args.lr, seed=args.seed)
    losses = finetune(student, teacher, train, recipe)
    seconds = time.time() - t0
    after = evaluate(torch_predictor(student), val, backend="torch")
    change = after.top1 - before.top1
    ok = abs(change) <= MAX_CHANGE_PT
    print(f"{args.checkpoint}: top-1 on {before.source} ({before.n} images) {before.top1:.2f}% -> {after.top1:.2f}% "
          f"after the prune recipe ({args.steps} steps of {args.batch}, lr {args.lr:g}, {args.data}; {seconds:.0f} s): "
          f"change {change:+.2f} pt ({'within' if ok else 'beyond'} ±{MAX_CHANGE_PT} pt: "
          f"{'trained out' if ok else 'undertrained' if change > 0 else 'the recipe costs it accuracy'})")
    if args.json:
        args.json.write_text(json.dumps({
            "checkpoint": args.checkpoint, "source": before.source, "n": before.n, "top1_before": before.top1,
            "top1_after": after.top1, "change_pt": change, "max_change_pt": MAX_CHANGE_PT, "steps": args.steps,
            "batch": args.batch, "lr": args.lr, "data": args.data, "seconds": round(seconds, 1),
            "loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
