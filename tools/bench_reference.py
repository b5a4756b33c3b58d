"""NumPy reference float32 forward time vs torch eager on the same input, measured side by side.

    python -m tools.bench_reference [--model cloformer_xxs] [--size 224] [--rounds 7]

Rounds alternate NumPy and torch so machine drift hits both alike; medians and their ratio are
printed (issue target: NumPy <= 3x torch eager for XXS at 224, batch 1).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

import cloformer
import reference_np as rn


def _time(fn, reps: int) -> float:
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="cloformer_xxs", choices=cloformer.list_models())
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--reps", type=int, default=5, help="forwards per round")
    ap.add_argument("--json", help="also write the result here")
    args = ap.parse_args(argv)

    model = cloformer.create_model(args.model).eval()
    weights = {k: v.numpy() for k, v in model.state_dict().items()}
    x = np.random.default_rng(0).standard_normal((args.batch, 3, args.size, args.size)).astype(np.float32)
    xt = torch.from_numpy(x)
    with torch.inference_mode():
        run_torch = lambda: model(xt)  # noqa: E731
        run_np = lambda: rn.forward(weights, x)  # noqa: E731
        err = float(np.abs(run_torch().numpy() - run_np()).max())
        t_np, t_torch = [], []
        for _ in range(args.rounds):
            t_np.append(_time(run_np, args.reps))
            t_torch.append(_time(run_torch, args.reps))
    res = {"numpy_ms": statistics.median(t_np) * 1e3, "torch_ms": statistics.median(t_torch) * 1e3,
           "torch_threads": torch.get_num_threads(), "max_abs_diff": err}
    res["ratio"] = res["numpy_ms"] / res["torch_ms"]
    print(f"{args.model} {args.batch}x3x{args.size}x{args.size} float32, median of {args.rounds} alternating "
          f"rounds x {args.reps} forwards (torch threads: {res['torch_threads']})")
    print(f"  NumPy reference : {res['numpy_ms']:8.1f} ms")
    print(f"  torch eager     : {res['torch_ms']:8.1f} ms")
    print(f"  ratio NumPy/torch: {res['ratio']:.2f}x   (max |logit delta| {err:.1e})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return res


if __name__ == "__main__":
    main()
