"""Rendering of the reports: Markdown (tables, sections), plots and the printed summaries. Reading or writing a
report's data is compress.report; nothing here computes a result.

    tables  numbers, Markdown tables, the speed section and its verdict, what to deploy (every report)
    quant   the INT8 report and summary
    prune   the pruning report and the fast model's lines
"""

from .prune import fast_lines, write_prune_outputs
from .quant import isa_target_lines, quant_summary, targets_section, write_quant_outputs
from .tables import (
           bound,
           checks_table,
           deploy_line,
           deploy_section,
           fmt,
           md_table,
           profile_lines,
           runtime_table,
           speed_section,
           verdict,
)

__all__ = ["bound", "checks_table", "deploy_line", "deploy_section", "fast_lines", "fmt", "isa_target_lines",
           "md_table", "profile_lines", "quant_summary", "runtime_table", "speed_section", "targets_section", "verdict",
           "write_prune_outputs", "write_quant_outputs"]
