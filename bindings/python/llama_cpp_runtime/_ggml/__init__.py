"""ggml itself: its C API as the binding declares it, compute on a backend, the CPU threadpool, the reference."""
