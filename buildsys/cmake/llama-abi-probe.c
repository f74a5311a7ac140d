/* Records the layout of libllama's structs as the headers the build used define them: size, and the
 * offset and size of every field the binding declares (bindings/python/llama_cpp_runtime/_llama_abi.py;
 * tests/unit/test_llama_abi.py keeps the two lists equal). Built and run by the superbuild, which stages
 * its output as llama-abi.json. A field upstream removed or renamed fails this compile, on purpose. */
#include <stddef.h>
#include <stdio.h>

#include "llama.h"

#ifndef LLAMA_CPP_RUNTIME_UPSTREAM_COMMIT
#    define LLAMA_CPP_RUNTIME_UPSTREAM_COMMIT ""
#endif

#define FIELD(type, field) \
    fprintf(out, "%s\n    \"%s\": [%zu, %zu]", first ? "" : ",", #field, offsetof(type, field), \
            sizeof(((type *) 0)->field)); \
    first = 0;

#define STRUCT(name, type, fields) \
    fprintf(out, "%s\n  \"%s\": {\"size\": %zu, \"fields\": {", more ? "," : "", #name, sizeof(type)); \
    { int first = 1; fields } \
    fprintf(out, "}}"); \
    more = 1;

#define LLAMA_MODEL_PARAMS_FIELDS(type) \
    FIELD(type, devices) \
    FIELD(type, tensor_buft_overrides) \
    FIELD(type, n_gpu_layers) \
    FIELD(type, split_mode) \
    FIELD(type, load_mode) \
    FIELD(type, main_gpu) \
    FIELD(type, tensor_split) \
    FIELD(type, progress_callback) \
    FIELD(type, progress_callback_user_data) \
    FIELD(type, kv_overrides) \
    FIELD(type, vocab_only) \
    FIELD(type, check_tensors) \
    FIELD(type, use_extra_bufts) \
    FIELD(type, no_host) \
    FIELD(type, no_alloc) \
    FIELD(type, load_mtp)

#define LLAMA_CONTEXT_PARAMS_FIELDS(type) \
    FIELD(type, n_ctx) \
    FIELD(type, n_batch) \
    FIELD(type, n_ubatch) \
    FIELD(type, n_seq_max) \
    FIELD(type, n_rs_seq) \
    FIELD(type, n_outputs_max) \
    FIELD(type, n_outputs_max_per_seq) \
    FIELD(type, n_threads) \
    FIELD(type, n_threads_batch) \
    FIELD(type, ctx_type) \
    FIELD(type, rope_scaling_type) \
    FIELD(type, pooling_type) \
    FIELD(type, attention_type) \
    FIELD(type, flash_attn_type) \
    FIELD(type, rope_freq_base) \
    FIELD(type, rope_freq_scale) \
    FIELD(type, yarn_ext_factor) \
    FIELD(type, yarn_attn_factor) \
    FIELD(type, yarn_beta_fast) \
    FIELD(type, yarn_beta_slow) \
    FIELD(type, yarn_orig_ctx) \
    FIELD(type, defrag_thold) \
    FIELD(type, cb_eval) \
    FIELD(type, cb_eval_user_data) \
    FIELD(type, type_k) \
    FIELD(type, type_v) \
    FIELD(type, abort_callback) \
    FIELD(type, abort_callback_data) \
    FIELD(type, embeddings) \
    FIELD(type, offload_kqv) \
    FIELD(type, no_perf) \
    FIELD(type, op_offload) \
    FIELD(type, swa_full) \
    FIELD(type, kv_unified) \
    FIELD(type, samplers) \
    FIELD(type, n_samplers) \
    FIELD(type, ctx_other)

#define LLAMA_BATCH_FIELDS(type) \
    FIELD(type, n_tokens) \
    FIELD(type, token) \
    FIELD(type, embd) \
    FIELD(type, pos) \
    FIELD(type, n_seq_id) \
    FIELD(type, seq_id) \
    FIELD(type, logits)

int main(int argc, char ** argv) {
    FILE * out = argc > 1 ? fopen(argv[1], "w") : stdout;
    if (out == NULL) {
        perror(argv[1]);
        return 1;
    }
    int more = 0;
    fprintf(out, "{\"commit\": \"%s\", \"structs\": {", LLAMA_CPP_RUNTIME_UPSTREAM_COMMIT);
    STRUCT(llama_model_params, struct llama_model_params, LLAMA_MODEL_PARAMS_FIELDS(struct llama_model_params))
    STRUCT(llama_context_params, struct llama_context_params, LLAMA_CONTEXT_PARAMS_FIELDS(struct llama_context_params))
    STRUCT(llama_batch, llama_batch, LLAMA_BATCH_FIELDS(llama_batch))
    fprintf(out, "\n}}\n");
    return fclose(out) == 0 ? 0 : 1;
}
