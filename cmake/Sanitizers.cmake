# Sanitizers for duet's own targets, chosen by the DUET_SANITIZERS cache variable (the asan and tsan presets
# set it). Like warnings, they come from an INTERFACE target linked PRIVATE, never from global flags.
add_library(duet_sanitizers INTERFACE)
add_library(duet::sanitizers ALIAS duet_sanitizers)

if(DUET_SANITIZERS)
  list(JOIN DUET_SANITIZERS "," _duet_sanitizer_list)
  target_compile_options(duet_sanitizers INTERFACE -fsanitize=${_duet_sanitizer_list} -fno-omit-frame-pointer
                                                   -fno-sanitize-recover=all)
  target_link_options(duet_sanitizers INTERFACE -fsanitize=${_duet_sanitizer_list})
endif()
