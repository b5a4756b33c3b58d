"""Helpers the command tests share: the quickest run through every stage, what a run may leave behind, a stage
observer that fails one stage."""

from __future__ import annotations

from pathlib import Path

# quick settings for runs whose subject is not the quantization itself (the defaults' full bias correction and
# histogram ranges double the quantize time)
# the cheapest run that goes through every stage: these tests are about the commands, not the numbers (32 px, no
# speed section, no ISA matrix: test_quantize.py runs those); a test's own later options override these
FAST = ["--input-size", "32", "--subset-size", "8", "--val-limit", "16", "--fast-bias-correction",
        "--activation-range", "minmax", "--benchmark-seconds", "0", "--isa-matrix", "none"]

def leftovers(parent: Path) -> list[str]:
    """Anything a run may leave beside its output: staging folders, failed folders, renamed old outputs."""
    return sorted(p.name for p in parent.iterdir() if ".partial-" in p.name or p.name.endswith(".failed")
                  or ".old-" in p.name)

def fail_at(stage: str, exc: BaseException):
    """A stage observer (compress.stages.observe) that raises `exc` as the stage with id `stage` begins: a failure
    inside the run, after every stage before it."""
    def observer(stage_id: str) -> None:
        if stage_id == stage:
            raise exc
    return observer
