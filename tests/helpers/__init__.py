"""What the tests share: the fixture project driver, fresh venvs, real llama.cpp trees, tiny models, probes."""
