"""The INT8 stages every job composes: NNCF post-training quantization (ptq) or quantization-aware training (qat)
of the deploy graph, then evaluation, diagnosis against the NumPy run of the same IR, and the ISA matrix.

    stages   the stage lists (INT8_STAGES, QAT_STAGES), the state they keep in a job's context (Int8State), the
             refusals before any work, and the report
    steps    what the stages call, on plain values (calibrate, quantize_deploy, evaluate_int8, ...)
    ptq      the NNCF calls of post-training quantization
    qat      quantization-aware training in torch
"""

from .stages import (
    INT8_STAGES,
    QAT_STAGES,
    Int8State,
    check_qat,
    int8_report,
    int8_stages,
    precheck,
    precheck_qat,
)

__all__ = ["INT8_STAGES", "QAT_STAGES", "Int8State", "check_qat", "int8_report", "int8_stages", "precheck",
           "precheck_qat"]
