"""libllama's C API as ctypes sees it: the subset the model runtime calls, with the pinned signatures.

Structs passed by value are laid out by abi.lay_out() from the build's record before any of these
functions is declared.
"""

from __future__ import annotations

import ctypes
from collections.abc import Mapping

VOID_P = ctypes.c_void_p
TOKEN = ctypes.c_int32
TOKEN_P = ctypes.POINTER(TOKEN)
FLOAT_P = ctypes.POINTER(ctypes.c_float)
_INT = ctypes.c_int32
_BOOL = ctypes.c_bool
_CHARS = ctypes.c_char_p
_SIZE = ctypes.c_size_t

# enum llama_load_mode (replaced use_mmap / use_mlock)
LOAD_MODE_NONE, LOAD_MODE_MMAP, LOAD_MODE_MLOCK, LOAD_MODE_MMAP_MLOCK = 0, 1, 2, 3
# enum llama_pooling_type (the values the binding asks for)
POOLING_UNSPECIFIED, POOLING_MEAN = -1, 1
# enum llama_flash_attn_type, enum ggml_type (the values the binding asks for)
FLASH_ATTN_DISABLED, GGML_TYPE_F32 = 0, 0


def _signatures(structs: Mapping[str, type[ctypes.Structure]]) -> dict[str, tuple[object, list[object]]]:
    """Every function the model runtime calls, with the structs laid out for this libllama."""
    model_params, context_params = structs["llama_model_params"], structs["llama_context_params"]
    batch = structs["llama_batch"]
    return {
        "llama_backend_init": (None, []),
        "llama_model_default_params": (model_params, []),
        "llama_context_default_params": (context_params, []),
        "llama_model_load_from_file": (VOID_P, [_CHARS, model_params]),
        "llama_model_free": (None, [VOID_P]),
        "llama_model_get_vocab": (VOID_P, [VOID_P]),
        "llama_model_n_embd": (_INT, [VOID_P]),
        "llama_model_n_ctx_train": (_INT, [VOID_P]),
        "llama_model_n_params": (ctypes.c_uint64, [VOID_P]),
        "llama_model_size": (ctypes.c_uint64, [VOID_P]),
        "llama_model_desc": (_INT, [VOID_P, _CHARS, _SIZE]),
        "llama_model_meta_count": (_INT, [VOID_P]),
        "llama_model_meta_key_by_index": (_INT, [VOID_P, _INT, _CHARS, _SIZE]),
        "llama_model_meta_val_str_by_index": (_INT, [VOID_P, _INT, _CHARS, _SIZE]),
        "llama_vocab_n_tokens": (_INT, [VOID_P]),
        "llama_vocab_is_eog": (_BOOL, [VOID_P, TOKEN]),
        "llama_tokenize": (_INT, [VOID_P, _CHARS, _INT, TOKEN_P, _INT, _BOOL, _BOOL]),
        "llama_token_to_piece": (_INT, [VOID_P, TOKEN, _CHARS, _INT, _INT, _BOOL]),
        "llama_detokenize": (_INT, [VOID_P, TOKEN_P, _INT, _CHARS, _INT, _BOOL, _BOOL]),
        "llama_init_from_model": (VOID_P, [VOID_P, context_params]),
        "llama_free": (None, [VOID_P]),
        "llama_attach_threadpool": (None, [VOID_P, VOID_P, VOID_P]),
        "llama_n_ctx": (ctypes.c_uint32, [VOID_P]),
        "llama_n_batch": (ctypes.c_uint32, [VOID_P]),
        "llama_n_threads": (_INT, [VOID_P]),
        "llama_get_memory": (VOID_P, [VOID_P]),
        "llama_memory_clear": (None, [VOID_P, _BOOL]),
        "llama_memory_seq_pos_max": (_INT, [VOID_P, _INT]),
        "llama_batch_get_one": (batch, [TOKEN_P, _INT]),
        "llama_decode": (_INT, [VOID_P, batch]),
        "llama_synchronize": (None, [VOID_P]),
        "llama_get_logits_ith": (FLOAT_P, [VOID_P, _INT]),
        "llama_get_embeddings_seq": (FLOAT_P, [VOID_P, _INT]),
        "llama_sampler_init_greedy": (VOID_P, []),
        "llama_sampler_sample": (TOKEN, [VOID_P, VOID_P, _INT]),
        "llama_sampler_free": (None, [VOID_P]),
    }


def declare(llama: ctypes.CDLL, structs: Mapping[str, type[ctypes.Structure]]) -> ctypes.CDLL:
    """Give every function its signature (a missing export raises AttributeError naming it)."""
    for name, (restype, argtypes) in _signatures(structs).items():
        function = getattr(llama, name)
        function.restype = restype
        function.argtypes = argtypes
    return llama
