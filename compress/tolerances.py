"""Every numeric-agreement tolerance of the project, in one place (tests and the CLI's verify stage)."""

# NumPy reference <-> torch, float64, end to end and at every named intermediate: max |delta|.
FLOAT64_ATOL = 1e-10
# float32 twins (NumPy <-> torch, torch <-> ONNX Runtime, torch <-> OpenVINO f32):
# max |delta| <= FLOAT32_REL * max |reference|.
FLOAT32_REL = 1e-4
# Golden fixtures (made by tools/make_golden.py from the NumPy reference, float64) must be reproduced
# by the reference and by torch to this max |delta| (BLAS summation order may differ across machines).
GOLDEN_ATOL = 1e-10
# The evaluation transform against its golden (tests/golden/preprocess.npz, PIL and literal constants in float64):
# the crops bit for bit, the normalised values to this max |delta| (float32 arithmetic on values up to 2.6:
# measured 2.1e-7).
PREPROCESS_ATOL = 1e-6
# INT8 golden (tools/make_golden.py, tests/compress/quantize/test_int8_golden.py). Re-quantizing the golden model on
# its fixed calibration set must reproduce every FakeQuantize range to this relative delta: NNCF's min/max statistics
# are float32 activations of this CPU's kernels, so only their summation order may move them. Twice the largest
# delta measured over the ISAs (docs/results/tolerances.md).
INT8_FQ_RTOL = 2.5e-5
# The NumPy IR executor's logits of the re-quantized golden IR, with the stored ranges written back (a range
# 1e-5 away moves a value next to a rounding threshold one step, and the logits visibly), against the stored ones
# (max |delta|): the same graph run in float64, so only the last bits may differ.
INT8_LOGIT_ATOL = 1e-6
# OpenVINO's INT8 (CPU) against the NumPy float64 run of the same IR: the runtime computes in float32 and folds
# dequantization scales its own way, so values next to a FakeQuantize rounding threshold land one step away. How
# much that moves the logits is a property of the graph, measured by running the same graph in NumPy float32:
# OpenVINO must stay within this many dB of that yardstick: room for every ISA's kernels, and still a failure for a
# departing path (a saturating int16 path loses far more).
# The same bound holds an INT8 IR reshaped to batch N against its batch-1 logits (OpenVINO f32 hint): the CPU
# plugin picks int8 kernels per shape, so FLOAT32_REL cannot hold for INT8, and a batch path that changes top-1
# fails it.
INT8_RUNTIME_MARGIN_DB = 6.0
# ... and a fixed floor for the INT8 golden, which does not move with its own yardstick: OpenVINO's logits of the
# golden IR against the stored NumPy float64 ones (min/max ranges, 7-bit weights: --overflow-fix enable), set below
# the lowest value measured with every ISA imposed in turn, bf16 included; the same golden quantized without the
# overflow fix saturates under AVX2 and fails it.
INT8_GOLDEN_RUNTIME_MIN_DB = 22.0
# QAT's trained torch graph (float32) against its exported IR's float64 NumPy run, relative to the same IR run by
# NumPy in float32 (the yardstick): both are float32 evaluations of one graph, in which values next to a
# FakeQuantize threshold land on either side, so each is one draw of how many land across and the two differ by
# chance. On QAT_EXPORT_IMAGES crops the torch graph may fall this many dB below the yardstick: measured over torch's
# thread counts and imposed ISAs, untrained and trained, with margin (docs/results/tolerances.md)
QAT_EXPORT_MARGIN_DB = 2.0
QAT_EXPORT_IMAGES = 64  # on fewer, each SQNR rests on a handful of threshold flips and the gap swings widely
# An INT8 IR quantized with the equalisation (compress.int8.equalise) against the plain INT8 IR of the same settings,
# each run by OpenVINO (f32 hint) against its own NumPy run: values next to a rounding threshold land on either side,
# so two IRs of one graph differ by chance; the equalised one may sit this many dB lower (docs/results/advise.md).
EQ_GRAPH_MARGIN_DB = 3.0
