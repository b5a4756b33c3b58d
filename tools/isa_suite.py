"""Run the tests that bound what oneDNN computes (marker `isa_bound`) under every ISA this CPU can impose.

    python -m tools.isa_suite                      # natively, then each older level (ONEDNN_MAX_CPU_ISA)
    python -m tools.isa_suite --levels AVX2 -- -x  # chosen levels; arguments after -- go to pytest

OpenVINO's CPU plugin and torch's oneDNN read ONEDNN_MAX_CPU_ISA once per process, so each level runs in a pytest
process of its own. Each run's header names the ISA in force and the kernel a probe convolution really selected;
the table at the end gives, per run, that kernel, the default precision and pytest's own count. Exit status 1 when
any run failed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time

from compress.runtime import ISA_ENV, isa_levels, own_isa


def run_one(level: str | None, pytest_args: list[str]) -> dict[str, str]:
    env = dict(os.environ)
    env.pop(ISA_ENV, None)
    if level is not None:
        env[ISA_ENV] = level
    # not -q: pytest prints the report header (the ISA line) only at its default verbosity
    cmd = [sys.executable, "-m", "pytest", "-m", "isa_bound", "-p", "no:cacheprovider", *pytest_args]
    t0 = time.time()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    out = proc.stdout + proc.stderr
    header = next((ln for ln in out.splitlines() if ln.startswith("ISA: ")), "ISA: ? (no header)")
    kernel = re.search(r"a convolution runs ([^;]+);", header)
    precision = re.search(r"default precision: ([^;]+);", header)
    tail = [ln for ln in out.splitlines() if re.search(r"\d+ (passed|failed|error)", ln)]
    return {"level": level or f"{own_isa()} (native)", "kernel": kernel.group(1) if kernel else "?",
            "precision": precision.group(1) if precision else "?", "result": tail[-1].strip("= ") if tail else
            f"exit {proc.returncode}", "seconds": f"{time.time() - t0:.0f}", "rc": str(proc.returncode),
            "output": out}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default=None,
                    help="comma-separated oneDNN levels (default: native, then every older level this CPU has)")
    args = ap.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    if os.environ.get(ISA_ENV):
        ap.error(f"{ISA_ENV} is set in this shell ({os.environ[ISA_ENV]}): unset it; this command sets it per run")
    can = isa_levels()
    if args.levels:
        levels: list[str | None] = [lv.strip().upper() for lv in args.levels.split(",")]
        missing = [lv for lv in levels if lv not in can]
        if missing:
            ap.error(f"this CPU cannot run {', '.join(map(str, missing))} (it has {', '.join(can)})")
    else:
        levels = [None, *reversed(can[:-1])]  # native first, then older levels down to AVX2
    rows = []
    for level in levels:
        print(f"--- {level or 'native'}: pytest -m isa_bound", flush=True)
        row = run_one(level, extra)
        if row["rc"] != "0":
            print(row["output"][-6000:])
        print(f"    {row['result']} in {row['seconds']} s (kernel {row['kernel']}, default {row['precision']})",
              flush=True)
        rows.append(row)
    width = max(len(r["level"]) for r in rows)
    print(f"\n{'ISA':{width}s}  {'probe kernel':28s} {'default':8s} {'seconds':>7s}  pytest")
    for r in rows:
        print(f"{r['level']:{width}s}  {r['kernel']:28s} {r['precision']:8s} {r['seconds']:>7s}  {r['result']}")
    return 0 if all(r["rc"] == "0" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
