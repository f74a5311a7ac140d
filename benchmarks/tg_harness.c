// tg<N> as llama-bench runs it, from a C program on a stage's libraries: ggml_backend_load(MODULE), the model, a
// context of n_ctx N with a threadpool of ggml's defaults attached, one warm-up token, then REPS repetitions of N
// single-token decodes from an empty memory; prints the mean tokens/s. It separates "a process calling libllama"
// from "a Python process calling libllama" (benchmarks/README.md, "tg at 2 threads"). Build and run:
//   S=build/stage/cpu; gcc -O2 -o tg benchmarks/tg_harness.c -I$S/include -L$S/lib -l:libllama.so.0 \
//       -l:libggml.so.0 -l:libggml-base.so.0 -Wl,-rpath,$S/lib
//   ./tg $S/modules/libggml-cpu-zen4.so model.gguf 128 5 2
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "llama.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static void quiet(enum ggml_log_level l, const char * s, void * u) { (void) l; (void) s; (void) u; }
int main(int argc, char ** argv) {
    if (argc < 6) { fprintf(stderr, "tg MODULE MODEL N REPS THREADS\n"); return 2; }
    int n = atoi(argv[3]), reps = atoi(argv[4]), threads = atoi(argv[5]);
    llama_log_set(quiet, NULL);
    if (!ggml_backend_load(argv[1])) { fprintf(stderr, "module\n"); return 1; }
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    struct llama_model * model = llama_model_load_from_file(argv[2], mp);
    if (!model) return 1;
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = n; cp.n_batch = 2048; cp.n_ubatch = 512; cp.n_threads = threads; cp.n_threads_batch = threads;
    struct llama_context * ctx = llama_init_from_model(model, cp);
    ggml_backend_reg_t cpu = ggml_backend_dev_backend_reg(ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU));
    typedef struct ggml_threadpool * (*new_fn)(struct ggml_threadpool_params *);
    new_fn make = (new_fn) ggml_backend_reg_get_proc_address(cpu, "ggml_threadpool_new");
    struct ggml_threadpool_params tpp = ggml_threadpool_params_default(threads);
    llama_attach_threadpool(ctx, make(&tpp), NULL);
    const struct llama_vocab * vocab = llama_model_get_vocab(model);
    int n_vocab = llama_vocab_n_tokens(vocab);
    srand(2);
    llama_token tok = rand() % n_vocab;
    llama_decode(ctx, llama_batch_get_one(&tok, 1)); llama_synchronize(ctx);
    double total = 0;
    for (int r = 0; r < reps; r++) {
        llama_memory_clear(llama_get_memory(ctx), false);
        double start = now();
        for (int i = 0; i < n; i++) { tok = rand() % n_vocab; llama_decode(ctx, llama_batch_get_one(&tok, 1)); llama_synchronize(ctx); }
        total += n / (now() - start);
    }
    printf("%.2f\n", total / reps);
    llama_free(ctx); llama_model_free(model);
    return 0;
}
