"""CloFormer compression pipeline: load, calibrate, quantize or prune, export, verify, report."""
