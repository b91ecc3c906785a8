#pragma once
// How much slower this build runs than a release build: sanitizers multiply the CPU cost of everything. Tests
// that bound CPU time (not correctness) scale their limits by it; tests that check behaviour never do.

namespace duet::test {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr double sanitizer_slowdown = 5.0;
inline constexpr bool sanitized = true;
#else
inline constexpr double sanitizer_slowdown = 1.0;
inline constexpr bool sanitized = false;
#endif

} // namespace duet::test
