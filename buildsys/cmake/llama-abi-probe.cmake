# Writes the probe that records the layout of libllama's structs (llama-abi-probe.c.in) with one FIELD for
# every field llama.h declares in each struct below, read from the header itself: the record then answers
# for any field, so a bump that adds or moves fields needs no edit here or in the binding.
#   include(llama-abi-probe.cmake) + llama_cpp_runtime_write_abi_probe(<llama.h> <output.c>)
#   cmake -DHEADER=<llama.h> -DOUTPUT=<output.c> -P llama-abi-probe.cmake   (the same, for tests)

# <name in the record>|<the C type offsetof() takes>
set(LLAMA_CPP_RUNTIME_ABI_STRUCTS
    "llama_model_params|struct llama_model_params"
    "llama_context_params|struct llama_context_params"
    "llama_batch|llama_batch")
set(llama_cpp_runtime_abi_template "${CMAKE_CURRENT_LIST_DIR}/llama-abi-probe.c.in")

# The field names of `struct <name> { ... }` in declaration order ("" when the header has no such struct).
function(llama_cpp_runtime_struct_fields text name out_var)
    set(fields "")
    string(REGEX MATCH "struct[ \t\r\n]+${name}[ \t\r\n]*{[^}]*}" block "${text}")
    if (block)
        string(REGEX REPLACE "^[^{]*{(.*)}$" "\\1" body "${block}")
        foreach (declaration IN LISTS body)  # a CMake list splits at ';', as C declarations end
            string(STRIP "${declaration}" declaration)
            if (declaration MATCHES "([A-Za-z_][A-Za-z0-9_]*)$")
                list(APPEND fields "${CMAKE_MATCH_1}")
            endif()
        endforeach()
    endif()
    set(${out_var} "${fields}" PARENT_SCOPE)
endfunction()

function(llama_cpp_runtime_write_abi_probe header output)
    file(READ "${header}" text)
    string(REGEX REPLACE "/\\*([^*]|\\*+[^*/])*\\*+/" "" text "${text}")  # block comments
    string(REGEX REPLACE "//[^\n]*" "" text "${text}")                    # line comments
    set(LLAMA_ABI_STRUCTS "")
    foreach (entry IN LISTS LLAMA_CPP_RUNTIME_ABI_STRUCTS)
        string(REPLACE "|" ";" entry "${entry}")
        list(GET entry 0 name)
        list(GET entry 1 type)
        llama_cpp_runtime_struct_fields("${text}" "${name}" fields)
        if (NOT fields)
            message(FATAL_ERROR "${header} declares no struct ${name}: the binding cannot lay it out")
        endif()
        set(line "    STRUCT(${name}, ${type},")
        foreach (field IN LISTS fields)
            string(APPEND line " FIELD(${type}, ${field})")
        endforeach()
        string(APPEND LLAMA_ABI_STRUCTS "${line})\n")
    endforeach()
    string(STRIP "${LLAMA_ABI_STRUCTS}" LLAMA_ABI_STRUCTS)
    set(LLAMA_ABI_STRUCTS "    ${LLAMA_ABI_STRUCTS}")
    configure_file("${llama_cpp_runtime_abi_template}" "${output}" @ONLY)
endfunction()

if (CMAKE_SCRIPT_MODE_FILE STREQUAL CMAKE_CURRENT_LIST_FILE)
    llama_cpp_runtime_write_abi_probe("${HEADER}" "${OUTPUT}")
endif()
