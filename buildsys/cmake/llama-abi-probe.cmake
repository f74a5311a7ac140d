# Writes the probe that records the layout of libllama's structs (llama-abi-probe.c.in) with one FIELD for
# every field llama.h declares in each struct the binding passes (the "structs" of its structs.json), read
# from the header itself: the record then answers for any field, so a bump that adds or moves
# fields needs no edit here or in the binding.
#   include(llama-abi-probe.cmake) + llama_cpp_runtime_write_abi_probe(<llama.h> <output.c>)
#   cmake -DHEADER=<llama.h> -DOUTPUT=<output.c> -P llama-abi-probe.cmake   (the same, for tests)

set(llama_cpp_runtime_abi_template "${CMAKE_CURRENT_LIST_DIR}/llama-abi-probe.c.in")
set(llama_cpp_runtime_abi_declarations
    "${CMAKE_CURRENT_LIST_DIR}/../../bindings/python/llama_cpp_runtime/_llama/structs.json")

# The structs the binding passes to libllama, as its structs.json names them (CMake's JSON reader sorts them).
function(llama_cpp_runtime_abi_structs out_var)
    if (NOT EXISTS "${llama_cpp_runtime_abi_declarations}")
        message(FATAL_ERROR "${llama_cpp_runtime_abi_declarations} is missing: it names the structs to record")
    endif()
    file(READ "${llama_cpp_runtime_abi_declarations}" declarations)
    string(JSON count LENGTH "${declarations}" structs)
    set(names "")
    if (count GREATER 0)
        math(EXPR last "${count} - 1")
        foreach (index RANGE ${last})
            string(JSON name MEMBER "${declarations}" structs ${index})
            list(APPEND names "${name}")
        endforeach()
    endif()
    set(${out_var} "${names}" PARENT_SCOPE)
endfunction()

# The field names of `struct <name> { ... }` in declaration order ("" when the header has no such struct).
function(llama_cpp_runtime_struct_fields text name out_var)
    set(fields "")
    string(REGEX MATCH "struct[ \t\r\n]+${name}[ \t\r\n]*{[^}]*}" block "${text}")
    if (block)
        string(REGEX REPLACE "^[^{]*{(.*)}$" "\\1" body "${block}")
        foreach (declaration IN LISTS body)  # a CMake list splits at ';', as C declarations end
            string(STRIP "${declaration}" declaration)
            # the name, before any array dimensions: `char name[16]`
            if (declaration MATCHES "([A-Za-z_][A-Za-z0-9_]*)[ \t\r\n]*(\\[[^]]*\\][ \t\r\n]*)*$")
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
    llama_cpp_runtime_abi_structs(names)
    if (NOT CMAKE_SCRIPT_MODE_FILE)  # a changed list of structs configures again
        set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${llama_cpp_runtime_abi_declarations}")
    endif()
    foreach (name IN LISTS names)
        set(type "struct ${name}")  # valid C for a typedef'd struct too (llama_batch)
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
