"""Where an IR's time goes on this CPU: node types, layout nodes, int8 against float per stage, and the arithmetic
bound at the peak measured here (compress.profile).

    python -m tools.profile outputs/int8/model_int8.xml outputs/int8/model_fp32.xml
    python -m tools.profile outputs/int8/model_int8.xml --precision f32 --json profile.json
    ONEDNN_MAX_CPU_ISA=AVX2 python -m tools.profile outputs/int8/model_int8.xml     # as an AVX2 CPU runs it

Prints Markdown (a table per IR and the verdict: bound by arithmetic, or by nodes and memory passes).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from compress.atomic import write_text_atomic
from compress.plain import to_plain
from compress.profile import profile_ir
from compress.render import profile_lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("irs", nargs="+", type=Path, help="OpenVINO IRs (.xml)")
    ap.add_argument("-d", "--device", default="CPU")
    ap.add_argument("--precision", default=None, choices=["f32", "bf16", "f16"],
                    help="INFERENCE_PRECISION_HINT (default: the device's, as deployed)")
    ap.add_argument("--runs", type=int, default=200, help="profiled inferences (default %(default)s)")
    ap.add_argument("--json", type=Path, default=None, help="also write the profiles here")
    args = ap.parse_args(argv)
    missing = [str(p) for p in args.irs if not p.is_file()]
    if missing:
        print(f"tools.profile: no such IR: {', '.join(missing)}", file=sys.stderr)
        return 2
    if args.runs < 1:
        print("tools.profile: --runs must be >= 1", file=sys.stderr)
        return 2
    profiles = [profile_ir(p, args.device, args.precision, args.runs, label=str(p)) for p in args.irs]
    for p in profiles:
        print("\n".join(profile_lines(p)) + "\n")
    if args.json:
        write_text_atomic(args.json, json.dumps(to_plain(profiles), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
