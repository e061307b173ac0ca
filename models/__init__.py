"""The T5-family encoder-decoder in JAX/Flax with a T5X-compatible parameter tree."""
