"""Finding and loading the libraries and backend modules: discovery, CPU variant scores, plugins, the CUDA choice."""
