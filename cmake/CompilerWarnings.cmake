# Warnings for duet's own targets only: link duet::warnings PRIVATE; never set global flags.
# Not -Wuseless-cast: it rejects portable casts between types that happen to be the same on LP64
# (std::uint64_t and std::size_t, std::ptrdiff_t and std::int64_t).
add_library(duet_warnings INTERFACE)
add_library(duet::warnings ALIAS duet_warnings)

target_compile_options(
  duet_warnings
  INTERFACE -Wall
            -Wextra
            -Wpedantic
            -Wshadow
            -Wconversion
            -Wsign-conversion
            -Wnon-virtual-dtor
            -Wold-style-cast
            -Wcast-align
            -Woverloaded-virtual
            -Wdouble-promotion
            -Wformat=2
            -Wimplicit-fallthrough
            $<$<CXX_COMPILER_ID:GNU>:-Wmisleading-indentation
            -Wduplicated-cond
            -Wduplicated-branches
            -Wlogical-op>
            $<$<BOOL:${DUET_WARNINGS_AS_ERRORS}>:-Werror>)
