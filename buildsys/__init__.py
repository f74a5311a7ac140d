"""buildsys: vendor llama.cpp at a pinned commit with a patch queue, and build it into wheels."""

__version__ = "0.1.0"
