"""header_structs: the fields of libllama's structs in llama.h, and what a bump changes in them."""

from __future__ import annotations

from buildsys.builder.header_structs import StructChange, describe_changes, struct_fields

OLD = """
    // a comment with struct llama_model_params { in it
    struct llama_model_params {
        ggml_backend_dev_t * devices; // NULL-terminated
        int32_t n_gpu_layers;
        enum llama_load_mode  load_mode;  /* how to load */
        int32_t main_gpu;
        bool vocab_only;
    };
    typedef struct llama_batch {
        int32_t n_tokens;
        llama_seq_id ** seq_id;
    } llama_batch;
"""


def test_fields_are_read_in_order_with_their_types() -> None:
    assert struct_fields(OLD, "llama_model_params") == [
        ("ggml_backend_dev_t *", "devices"),
        ("int32_t", "n_gpu_layers"),
        ("enum llama_load_mode", "load_mode"),
        ("int32_t", "main_gpu"),
        ("bool", "vocab_only"),
    ]
    assert struct_fields(OLD, "llama_batch") == [("int32_t", "n_tokens"), ("llama_seq_id **", "seq_id")]
    assert struct_fields(OLD, "llama_context_params") is None


USED: dict[str, dict[str, str]] = {  # struct -> field -> the C type the binding declares
    "llama_model_params": {"load_mode": "enum llama_load_mode"},
    "llama_batch": {"n_tokens": "int32_t"},
    "llama_context_params": {},
}


def test_a_bump_names_added_removed_and_retyped_fields_and_whether_the_binding_uses_them() -> None:
    new = (
        OLD.replace("int32_t main_gpu;", "enum llama_lazy_mode lazy_mode;\n        int32_t main_gpu;")
        .replace("bool vocab_only;", "")
        .replace("int32_t n_tokens;", "int64_t n_tokens;")
    )
    assert describe_changes(OLD, new, USED) == [
        StructChange(
            "struct llama_model_params changed in include/llama.h: + enum llama_lazy_mode lazy_mode (after load_mode); "
            "- vocab_only",
            (),
        ),
        StructChange("struct llama_batch changed in include/llama.h: n_tokens: int32_t → int64_t", ("n_tokens",)),
    ]
    assert describe_changes(OLD, new.replace("enum llama_load_mode  load_mode;", ""), USED)[0].used == ("load_mode",)
    assert describe_changes(OLD, OLD.replace("llama_batch", "llama_other"), {"llama_batch": {}}) == [
        StructChange("struct llama_batch is gone from include/llama.h", ("llama_batch",))
    ]


def test_a_used_field_the_new_header_types_otherwise_than_the_binding_declares_is_named() -> None:
    declared = {**USED, "llama_model_params": {"main_gpu": "int64_t", "load_mode": "enum llama_load_mode"}}
    assert describe_changes(OLD, OLD, declared) == [  # the header did not change it: the binding is wrong already
        StructChange(
            "struct llama_model_params changed in include/llama.h: the binding declares main_gpu as int64_t, "
            "include/llama.h as int32_t",
            ("main_gpu",),
        )
    ]
    new = OLD.replace("int32_t main_gpu;", "int64_t main_gpu;")
    assert describe_changes(OLD, new, declared) == [  # the header caught up with the binding: only the change
        StructChange("struct llama_model_params changed in include/llama.h: main_gpu: int32_t → int64_t", ("main_gpu",))
    ]
    assert describe_changes(OLD, OLD, USED) == []


def test_array_fields_are_read_with_their_names() -> None:
    header = "struct s {\n    char name[16];\n    float split [4][2];\n    int n;\n};\n"
    assert struct_fields(header, "s") == [("char", "name"), ("float", "split"), ("int", "n")]
