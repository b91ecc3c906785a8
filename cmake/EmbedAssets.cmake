# Files compiled into a target as byte arrays, so that a server serves them with nothing read at run time:
#   duet_embed_assets(TARGET t HEADER dir/assets.hpp NAMESPACE ns FILES a.html b.js ...)
# generates embedded_assets.cpp defining ns::embedded_assets() as HEADER declares it: a span of {name,
# content_type, bytes}, one per file (name: the file's name without its folder), each array followed by a NUL
# that the span leaves out. It is regenerated when a file changes.
set(DUET_EMBED_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/embed_assets_script.cmake)

function(duet_embed_assets)
  cmake_parse_arguments(E "" "TARGET;HEADER;NAMESPACE" "FILES" ${ARGN})
  set(out ${CMAKE_CURRENT_BINARY_DIR}/embedded_assets.cpp)
  string(REPLACE ";" "|" files "${E_FILES}")
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DOUTPUT=${out} -DNAMESPACE=${E_NAMESPACE} -DHEADER=${E_HEADER} "-DFILES=${files}" -P ${DUET_EMBED_SCRIPT}
    DEPENDS ${E_FILES} ${DUET_EMBED_SCRIPT}
    COMMENT "Embedding ${E_TARGET}'s assets"
    VERBATIM)
  target_sources(${E_TARGET} PRIVATE ${out})
endfunction()
