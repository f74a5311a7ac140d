"""The machine's GPUs as the operating system and the drivers see them, without ggml: what is there, what
each plugin wheel needs and serves, and which wheel to install."""

from __future__ import annotations

import sys

# The doctor's probes that load a driver, each in a child (`python -m llama_cpp_runtime _gpu_probe <kind>`):
# here, where the command line's choices cost no import of the probes.
KINDS = ("metal",) if sys.platform == "darwin" else ("nvidia", "vulkan")
