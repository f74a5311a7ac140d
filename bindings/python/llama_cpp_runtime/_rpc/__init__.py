"""ggml's RPC backend: serving this machine's devices, and using another machine's (the model in a child)."""
