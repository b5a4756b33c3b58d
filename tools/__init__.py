"""Command-line tools: goldens, benchmarks, data subsets, checkpoint conversion, training."""
