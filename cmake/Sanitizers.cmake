# Sanitizers for duet's own targets, chosen by the DUET_SANITIZERS cache variable (the asan and tsan presets
# set it). Like warnings, they come from an INTERFACE target linked PRIVATE, never from global flags.
add_library(duet_sanitizers INTERFACE)
add_library(duet::sanitizers ALIAS duet_sanitizers)

if(DUET_SANITIZERS)
  list(JOIN DUET_SANITIZERS "," _duet_sanitizer_list)
  target_compile_options(duet_sanitizers INTERFACE -fsanitize=${_duet_sanitizer_list} -fno-omit-frame-pointer
                                                   -fno-sanitize-recover=all)
  target_link_options(duet_sanitizers INTERFACE -fsanitize=${_duet_sanitizer_list})
  if("undefined" IN_LIST DUET_SANITIZERS AND CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    # clang 14's -fsanitize=function check cannot compile C++20 coroutines ("Cannot represent a difference
    # across sections"); the rest of UBSan stays on.
    target_compile_options(duet_sanitizers INTERFACE -fno-sanitize=function)
  endif()
  if("thread" IN_LIST DUET_SANITIZERS)
    # TSan does not model std::atomic_thread_fence (GCC warns: -Wtsan). Asio's fenced blocks are its only use
    # here; without them TSan sees the same synchronisation (the scheduler's mutex) and reports no false races.
    # Every target that includes Asio links this target, so the setting is the same in every translation unit.
    target_compile_definitions(duet_sanitizers INTERFACE BOOST_ASIO_DISABLE_FENCED_BLOCK)
  endif()
endif()
