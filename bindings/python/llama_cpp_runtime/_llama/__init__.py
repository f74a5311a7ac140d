"""libllama: its structs and functions, GGUF headers, models, contexts, tokenizers, model benchmarks."""
