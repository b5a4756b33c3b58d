"""Every numeric-agreement tolerance of the project, in one place (tests and the CLI's verify stage)."""

# NumPy reference <-> torch, float64, end to end and at every named intermediate: max |delta|.
FLOAT64_ATOL = 1e-10
# float32 twins (NumPy <-> torch, torch <-> ONNX Runtime, torch <-> OpenVINO f32):
# max |delta| <= FLOAT32_REL * max |reference|.
FLOAT32_REL = 1e-4
# Golden fixtures (made by tools/make_golden.py from the NumPy reference, float64) must be reproduced
# by the reference and by torch to this max |delta| (BLAS summation order may differ across machines).
GOLDEN_ATOL = 1e-10
