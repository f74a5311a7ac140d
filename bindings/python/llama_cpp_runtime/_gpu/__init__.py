"""The machine's GPUs as the operating system and the drivers see them, without ggml: what is there, what
each plugin wheel needs and serves, and which wheel to install."""
