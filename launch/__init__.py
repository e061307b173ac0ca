"""Launchers: train, eval, infer, distill, sweep, demo (`python -m launch.<name>`)."""
import os

# Before any launcher imports tensorflow: keep TF's C++ INFO/WARNING start-up
# lines (CUDA probing, oneDNN notices) off the console; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
