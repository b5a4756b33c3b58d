"""Convert an official-format CloFormer checkpoint to .safetensors (or .npz), checked strictly.

    python -m tools.convert_checkpoint SRC.pth DST.safetensors [--model cloformer_xxs] [--trust-pickle]

The authors' training checkpoints hold {'model': sd, 'optimizer', ..., 'config'}; 'config' is a yacs
object, so torch.load(weights_only=True) refuses the file. --trust-pickle loads it with full unpickling
(only for files you trust) and keeps the state dict alone.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

import cloformer
import reference_np as rn
from cloformer.checkpoint import read_state_dict
from reference_np.io import clean_state_dict


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--model", default="cloformer_xxs", choices=cloformer.list_models())
    ap.add_argument("--trust-pickle", action="store_true", help="allow arbitrary pickled objects in SRC")
    args = ap.parse_args(argv)
    try:
        if args.trust_pickle:
            sd = clean_state_dict(torch.load(args.src, map_location="cpu", weights_only=False))
        else:
            sd = read_state_dict(args.src)
        model = cloformer.create_model(args.model, num_classes=int(sd["head.weight"].shape[0]), allow_pruned=False)
        cloformer.checkpoint.load_checkpoint(model, sd, str(args.src))
        rn.save_weights({k: v.numpy() for k, v in model.state_dict().items()}, args.dst,
                        metadata={"variant": args.model, "source": args.src.name})
    except (FileNotFoundError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.dst} ({args.model}, {len(sd)} tensors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
