/* Compiled into upstream's llama-server by the server preset (ours, not upstream's).
 *
 * Upstream's programs find backend modules with ggml_backend_load_all(), which looks only beside the executable
 * and in the working directory. The llama-cpp-runtime launcher (the `llama-server` console script) has already
 * chosen the modules the way the binding does (the best CPU variant this CPU runs, each installed plugin that
 * passed its checks) and lists their paths in LLAMA_CPP_RUNTIME_MODULES, separated like PATH. They are
 * registered here, before main(), so the program's own search finds them registered and adds nothing else.
 * A listed module that does not load stops the program: a server that silently lost its GPU is worse than none.
 */
#include "ggml-backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#define LIST_SEPARATOR ';'
#else
#define LIST_SEPARATOR ':'
#endif

#define BACKENDS_VARIABLE "LLAMA_CPP_RUNTIME_MODULES"

static void llama_cpp_runtime_register_backends(void) {
    const char * listed = getenv(BACKENDS_VARIABLE);
    if (listed == NULL || listed[0] == '\0') {
        return;
    }
    char * paths = malloc(strlen(listed) + 1);
    if (paths == NULL) {
        fprintf(stderr, "llama-cpp-runtime: out of memory reading %s\n", BACKENDS_VARIABLE);
        exit(1);
    }
    strcpy(paths, listed);
    for (char * path = paths; path != NULL && *path != '\0';) {
        char * separator = strchr(path, LIST_SEPARATOR);
        if (separator != NULL) {
            *separator = '\0';
        }
        if (*path != '\0' && ggml_backend_load(path) == NULL) {
            fprintf(stderr, "llama-cpp-runtime: the backend module %s (listed in %s) did not load\n", path,
                    BACKENDS_VARIABLE);
            exit(1);
        }
        path = separator != NULL ? separator + 1 : NULL;
    }
    free(paths);
}

#if defined(_MSC_VER)
#pragma section(".CRT$XCU", read)
__declspec(allocate(".CRT$XCU")) static void (*llama_cpp_runtime_register_at_start)(void) =
    llama_cpp_runtime_register_backends;
#else
__attribute__((constructor)) static void llama_cpp_runtime_register_at_start(void) {
    llama_cpp_runtime_register_backends();
}
#endif
