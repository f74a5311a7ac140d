"""Stage 2, build: the presets (the matrix), toolchains, the CMake driver, ccache, logs, the stage and its summary."""
