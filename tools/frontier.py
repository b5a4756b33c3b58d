"""The speed/accuracy frontier on this CPU, and what to deploy: one command builds a set of configurations, times
every artifact with benchmark_app at the deployment size (natively and under imposed ISAs), and picks.

    python -m tools.frontier [--ratios 0.3 0.45] [--depths 2 4] [--qat] [--input-size 224] [--isa AVX2]
                             [-t 5] [--rounds 3] [--out outputs/frontier] [--checkpoint proxy] [--build-only]

Configurations, each one job run as a user runs it (`python -m compress.quantize ...`), in `--out`/<name>:
  quantize       compress.quantize                                       deploy FP32, INT8
  qat            compress.quantize --qat (with --qat)                    QAT's INT8, PTQ's beside it
  prune-R        compress.prune --method structured --ratio R --quantize   pruned FP32, pruned INT8
  depth-N        compress.prune --method depth --depth N --quantize        N blocks removed whole
  prune-R-depth-N  compress.prune --method structured --ratio R --depth N --quantize   both
A folder that already holds a report.json is reused, so an interrupted frontier resumes where it stopped (--rebuild
runs every job again). The jobs skip their own speed sections and ISA matrices: the frontier times everything in
one run instead (tools.benchmark: benchmark_app, interleaved rounds, medians; every ratio against plain FP32 of the
unpruned checkpoint measured in the same run and under the same ISA).

Accuracy is each job's top-1 on its validation data (proxy-val by default) at the checkpoint's own size; speed is
at --input-size (the IRs reshape). The choice is compress.choice's rule, the one every report ends with, over all
artifacts: the simplest that holds its accuracy bound (top-1 within compress.targets' drop bound of the unpruned
FP32 IR; an INT8 IR also agrees with its own FP32 on compress.targets' share), replaced by a more compressed one only
when measurably faster. Writes frontier.md (a table per ISA, the Pareto points marked), frontier.json and
frontier.png (top-1 against batch-1 latency and against batch-N throughput).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from compress import isa
from compress.choice import Candidate, accuracy_miss, pick
from compress.errors import InputError
from compress.plots import pyplot, save
from compress.render import md_table
from compress.report import PruneReport, QuantReport, read_report, round_ratios
from compress.runtime import cpu_isa, default_precision, own_isa
from compress.speed import BASELINE, isa_short
from compress.targets import FAST_DROP
from tools.bench_targets import Target, discover
from tools.benchmark import IMPOSED_NOTE, imposed, measure

JOB_OPTIONS = ("--benchmark-seconds", "0", "--isa-matrix", "none")  # the frontier times every artifact itself


@dataclass
class Config:
    name: str  # its folder under --out
    argv: list[str]  # the job's command line

    def command(self) -> str:
        return " ".join(["python", "-m", *self.argv])


@dataclass
class Point:
    """One artifact under one ISA: its accuracy and its benchmark_app figures."""

    label: str  # config/artifact
    artifact: str  # path relative to --out
    isa: str  # "" native, else the imposed level
    top1: float | None
    agreement: float | None  # INT8: top-1 agreement with its own FP32 IR
    miss: str | None
    latency_ms: float
    fps_bn: float
    latency_x: float  # against plain FP32 under the same ISA (median of per-round ratios)
    fps_bn_x: float
    front_latency: bool = False  # on the Pareto front of top-1 against latency
    front_fps: bool = False


# ---------------------------------------------------------------- the configurations
def plan(ratios: list[float], qat: bool, common: list[str], depths: list[int] = ()) -> list[Config]:
    """The jobs, simplest first: PTQ of the unpruned model (its FP32 IR is the accuracy reference), QAT, each
    channel ratio, each depth, then each depth with each ratio; every pruned one with PTQ."""
    extra = [*JOB_OPTIONS, *common]

    def prune(name: str, *how: str) -> Config:
        return Config(name, ["compress.prune", *how, "--quantize", *extra])

    return [Config("quantize", ["compress.quantize", *extra]),
            *([Config("qat", ["compress.quantize", "--qat", *extra])] if qat else []),
            *(prune(f"prune-{r:g}", "--method", "structured", "--ratio", f"{r:g}") for r in sorted(ratios)),
            *(prune(f"depth-{d}", "--method", "depth", "--depth", str(d)) for d in sorted(depths)),
            *(prune(f"prune-{r:g}-depth-{d}", "--method", "structured", "--ratio", f"{r:g}", "--depth", str(d))
              for d in sorted(depths) for r in sorted(ratios))]


def build(configs: list[Config], out: Path, rebuild: bool) -> None:
    """Run each job not yet built, as a user would; a job that fails stops the frontier with its command."""
    for i, c in enumerate(configs, 1):
        folder = out / c.name
        if (folder / "report.json").is_file() and not rebuild:
            print(f"[{i}/{len(configs)}] {c.name}: reusing {folder}/", flush=True)
            continue
        argv = [sys.executable, "-m", *c.argv, "--out", str(folder), *(["--force"] if folder.exists() else [])]
        print(f"[{i}/{len(configs)}] {c.name}: {c.command()}", flush=True)
        rc = subprocess.run(argv).returncode
        if rc != 0:
            raise InputError(f"{c.name}: `{c.command()} --out {folder}` exited {rc}; its folder says why")


# ---------------------------------------------------------------- accuracy of each artifact
def accuracies(report: QuantReport | PruneReport) -> dict[str, tuple[float | None, float | None]]:
    """IR file name -> (top-1, agreement with its own FP32 IR for INT8 IRs)."""
    if isinstance(report, PruneReport):
        out: dict[str, tuple[float | None, float | None]] = {"model_fp32.xml": (report.accuracy.pruned_ir_top1,
                                                                                None)}
        q = report.int8
    else:
        out, q = {"model_fp32.xml": (report.int8_vs_fp32.fp32_top1, None)}, report
    if q is not None:
        out["model_int8.xml"] = (q.int8_vs_fp32.int8_top1, q.int8_vs_fp32.top1_agreement)
        if q.qat is not None:
            out["model_int8_ptq.xml"] = (q.qat.ptq_vs_fp32.int8_top1, q.qat.ptq_vs_fp32.top1_agreement)
    return out


def miss(top1: float | None, agreement: float | None, reference: float | None) -> str | None:
    """The accuracy bounds an artifact misses against the unpruned FP32 IR's top-1 (compress.choice's, as every
    prune report judges its artifacts)."""
    if top1 is None or reference is None:
        return "top-1 not measured (no labels)"
    return accuracy_miss(reference - top1, FAST_DROP.bound, agreement)


# ---------------------------------------------------------------- timing
def per_round(a: list[float], b: list[float], invert: bool) -> float:
    """The median of per-round ratios of a over b (compress.report.round_ratios), as the reports' speed sections."""
    return statistics.median(round_ratios(a, b, invert))


def distinct(targets: list[Target]) -> list[Target]:
    """Each IR once: a later job's IR with the same bytes as an earlier one (QAT's FP32 IR is PTQ's, its PTQ IR
    the quantize job's) is timed and listed under the first."""
    seen: set[str] = set()
    out = []
    for t in targets:
        xml = Path(t.path)
        key = hashlib.sha256(xml.read_bytes() + xml.with_suffix(".bin").read_bytes()).hexdigest()
        if key not in seen:
            seen.add(key)
            out.append(t)
    return out


def time_all(folders: list[Path], size: int, levels: list[str], seconds: int, rounds: int, batch: int,
             scratch: Path) -> list[Target]:
    """benchmark_app on plain FP32 and every IR at the device's default precision (the deployed form), natively
    and under each imposed level, interleaved (tools.benchmark)."""
    targets = distinct([t for t in discover(folders, False, False, scratch, size) if t.precision != "f32"])
    targets += imposed(targets, levels)
    measure(targets, rounds, seconds, "both", "CPU", None, None, batch)
    return targets


def points(targets: list[Target], folders: list[Path], out: Path) -> list[Point]:
    reports = {f.name: read_report(f) for f in folders}
    first = reports[folders[0].name]
    reference = accuracies(first)["model_fp32.xml"][0]  # the unpruned FP32 IR (the quantize job's)
    result = []
    for t in targets:
        base = next(b for b in targets if b.role == "plain" and b.isa == t.isa)
        if t.role == "plain":
            top1, agreement, name = reference, None, BASELINE
        else:
            top1, agreement = accuracies(reports[t.group])[Path(t.path).name]
            name = f"{t.group}/{Path(t.path).stem.removeprefix('model_')}"
        result.append(Point(name, str(Path(t.path).relative_to(out)) if t.role != "plain" else "", t.isa, top1,
                            agreement, None if t.role == "plain" else miss(top1, agreement, reference),
                            t.latency_ms or 0.0, t.throughput_bn_fps or 0.0,
                            per_round(t.latencies_ms, base.latencies_ms, True),
                            per_round(t.throughputs_bn_fps, base.throughputs_bn_fps, False)))
    return result


def dominated(p: Point, pts: list[Point], faster: str) -> bool:
    """Another point is at least as accurate and at least as fast (`faster`: a speed-up attribute), better in one."""
    a, s = p.top1 or 0.0, getattr(p, faster)
    return any(q is not p and (q.top1 or 0.0) >= a and getattr(q, faster) >= s
               and ((q.top1 or 0.0) > a or getattr(q, faster) > s) for q in pts)


def mark_front(pts: list[Point]) -> None:
    """The Pareto points of one ISA, against latency and against throughput."""
    for p in pts:
        p.front_latency, p.front_fps = not dominated(p, pts, "latency_x"), not dominated(p, pts, "fps_bn_x")


def choose_point(pts: list[Point], targets: list[Target], batch: int) -> tuple[Point | None, list[str]]:
    """compress.choice's rule over one ISA's artifacts, simplest first (the order the jobs were planned in)."""
    by_label = {p.label: t for p, t in zip(pts, targets, strict=True)}

    def speedup(a: str, b: str) -> tuple[float, float]:
        ta, tb = by_label[a], by_label[b]
        return (per_round(ta.latencies_ms, tb.latencies_ms, True),
                per_round(ta.throughputs_bn_fps, tb.throughputs_bn_fps, False))

    groups = list(dict.fromkeys(p.label.split("/")[0] for p in pts if p.artifact))  # planned order
    order = sorted((p for p in pts if p.artifact), key=lambda p: (groups.index(p.label.split("/")[0]),
                                                                  "int8" in p.label, p.label.endswith("int8")))
    best, why = pick([Candidate(p.label, p.artifact, p.top1, p.miss) for p in order], speedup, batch)
    return next((p for p in pts if best is not None and p.label == best.label), None), why


# ---------------------------------------------------------------- outputs
def deploy_text(best: Point | None, why: list[str], level: str, batch: int) -> str:
    where = f"{level} imposed" if level else f"this CPU ({isa_short(cpu_isa())}, {default_precision()})"
    if best is None:
        return f"deploy under {where}: the model unchanged ({BASELINE}): " + "; ".join(why)
    return (f"deploy under {where}: {best.artifact} ({best.label}): {best.latency_ms:.2f} ms at batch 1 "
            f"({best.latency_x:.2f}x {BASELINE}), {best.fps_bn:.0f} images/s at batch {batch} ({best.fps_bn_x:.2f}x), "
            f"top-1 {best.top1:.2f}%" + "".join(f"; {w}" for w in why))


def table(pts: list[Point], batch: int) -> str:
    def f(v: float | None, spec: str) -> str:
        return "–" if v is None else format(v, spec)
    return md_table(["artifact", "top-1 %", "INT8 agreement %", f"latency ms (x {BASELINE})",
                     f"images/s at batch {batch} (x)", "Pareto (latency, throughput)", "accuracy bound"],
                    [[p.label, f(p.top1, ".2f"), f(p.agreement, ".2f"), f"{p.latency_ms:.2f} ({p.latency_x:.2f}x)",
                      f"{p.fps_bn:.0f} ({p.fps_bn_x:.2f}x)",
                      ", ".join(k for k, on in (("latency", p.front_latency), ("throughput", p.front_fps)) if on)
                      or "–", p.miss or "held"] for p in pts])


def plot(by_isa: dict[str, list[Point]], path: Path, size: int, batch: int) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    for (level, pts), marker in zip(by_isa.items(), "os^Dv", strict=False):
        name = level or f"native ({own_isa()})"
        for ax, key, front in ((axes[0], "latency_x", "front_latency"), (axes[1], "fps_bn_x", "front_fps")):
            xs = [getattr(p, key) for p in pts]
            line = ax.scatter(xs, [p.top1 or 0 for p in pts], marker=marker, label=name)
            on = sorted((p for p in pts if getattr(p, front)), key=lambda p: getattr(p, key))
            ax.plot([getattr(p, key) for p in on], [p.top1 or 0 for p in on], color=line.get_facecolor()[0],
                    alpha=0.5)
            for p in pts:
                ax.annotate(p.label.replace("quantize/", ""), (getattr(p, key), p.top1 or 0), fontsize=7,
                            xytext=(3, 3), textcoords="offset points")
    axes[0].set_xlabel(f"batch-1 latency speed-up over {BASELINE} (x)")
    axes[1].set_xlabel(f"batch-{batch} throughput speed-up over {BASELINE} (x)")
    for ax in axes:
        ax.set_ylabel("top-1 (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"CloFormer frontier at {size}x{size} (benchmark_app; Pareto points joined)", fontsize=10)
    save(fig, path)


def write(out: Path, configs: list[Config], by_isa: dict[str, list[Point]], lines: dict[str, str],
          args: argparse.Namespace, argv: list[str]) -> str:
    text = [f"# CloFormer speed/accuracy frontier ({datetime.now():%Y-%m-%d %H:%M})", "",
            f"`python -m tools.frontier {' '.join(argv)}`", "",
            f"CPU: {isa_short(cpu_isa())} ({cpu_isa()}), default precision {default_precision()}. benchmark_app -t "
            f"{args.t}, {args.rounds} interleaved rounds, at {args.input_size}x{args.input_size}: batch-1 latency "
            f"(LATENCY hint) and batch-{args.batch} throughput (THROUGHPUT hint), medians; ratios are medians of "
            f"per-round ratios against {BASELINE} under the same ISA. Top-1 on each job's validation data at the "
            "checkpoint's own size.", "", "Configurations:", "",
            *(f"- `{c.name}`: `{c.command()}`" for c in configs), ""]
    for level, pts in by_isa.items():
        text += [f"## {level + ' imposed' if level else 'Native'}", "", table(pts, args.batch), "",
                 lines[level] + ".", ""]
    if any(by_isa):
        text += [IMPOSED_NOTE, ""]
    text += ["![frontier](frontier.png)", ""]
    (out / "frontier.md").write_text("\n".join(text))
    (out / "frontier.json").write_text(json.dumps(
        {"command": ["python -m tools.frontier", *argv], "cpu_isa": cpu_isa(), "precision": default_precision(),
         "input_size": args.input_size, "batch": args.batch, "configs": [asdict(c) for c in configs],
         "points": {lv or "native": [asdict(p) for p in pts] for lv, pts in by_isa.items()},
         "deploy": {lv or "native": line for lv, line in lines.items()}}, indent=2) + "\n")
    plot(by_isa, out / "frontier.png", args.input_size, args.batch)
    return "\n".join(text)


# ---------------------------------------------------------------- the command
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ratios", type=float, nargs="*", default=[0.45],
                    help="structured pruning ratios, each a compress.prune --quantize job (default %(default)s)")
    ap.add_argument("--depths", type=int, nargs="*", default=[],
                    help="blocks removed whole, each a compress.prune --method depth job and one per --ratios "
                         "(default: none)")
    ap.add_argument("--qat", action="store_true", help="also the unpruned model with quantization-aware training")
    ap.add_argument("--input-size", type=int, default=224, help="the side every IR is timed at (default %(default)s)")
    ap.add_argument("--isa", default="AVX2",
                    help="also time under these imposed ISAs (comma-separated; 'none'); default %(default)s")
    ap.add_argument("-t", type=int, default=5, help="seconds per benchmark_app run (default %(default)s)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8, help="N of the batch-N throughput (default %(default)s)")
    ap.add_argument("--checkpoint", default=None, help="the jobs' --checkpoint (default: theirs, the shipped proxy)")
    ap.add_argument("--out", type=Path, default=Path("outputs/frontier"),
                    help="job folders and the frontier's files (default %(default)s)")
    ap.add_argument("--rebuild", action="store_true", help="run every job again, even where its report exists")
    ap.add_argument("--build-only", action="store_true",
                    help="build the configurations and stop (time them later, on a quiet machine)")
    args = ap.parse_args(argv)
    if args.input_size < 32 or args.input_size % 32:
        ap.error(f"--input-size {args.input_size}: expected a multiple of 32")
    if any(not 0 < r < 1 for r in args.ratios):
        ap.error(f"--ratios {args.ratios}: each in (0, 1)")
    try:
        levels = [lv for lv in isa.resolve(args.isa) if lv != own_isa()]
    except InputError as e:
        ap.error(str(e).replace("isa_matrix", "--isa"))
    if any(d < 1 for d in args.depths):
        ap.error(f"--depths {args.depths}: each >= 1")
    configs = plan(args.ratios, args.qat, ["--checkpoint", args.checkpoint] if args.checkpoint else [], args.depths)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        build(configs, args.out, args.rebuild)
        if args.build_only:
            return 0
        folders = [args.out / c.name for c in configs]
        with tempfile.TemporaryDirectory() as scratch:  # the plain FP32 baseline's IR
            targets = time_all(folders, args.input_size, levels, args.t, args.rounds, args.batch, Path(scratch))
        pts = points(targets, folders, args.out)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    by_isa: dict[str, list[Point]] = {}
    lines = {}
    for level in ["", *levels]:
        mine = [(p, t) for p, t in zip(pts, targets, strict=True) if p.isa == level]
        mark_front([p for p, _ in mine])
        best, why = choose_point([p for p, _ in mine], [t for _, t in mine], args.batch)
        by_isa[level], lines[level] = [p for p, _ in mine], deploy_text(best, why, level, args.batch)
    print(write(args.out, configs, by_isa, lines, args, argv))
    print(f"wrote {args.out}/frontier.md, frontier.json, frontier.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
