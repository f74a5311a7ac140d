"""`python -m llama_cpp_runtime`: the commands and the children they run."""
