#pragma once
// duet-load --trace: the server's timeline of the window a run measured, taken from duet's /trace.

#include <duet/client/options.hpp>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace duet::client {

/// Why a trace could not be taken, in one line: the server is no duet (no /trace), refused, or unreachable.
class trace_error : public std::runtime_error
{
public:
    using std::runtime_error::runtime_error;
};

struct fetched_trace
{
    std::string json; ///< the Trace Event Format document, as the server sent it
    std::int64_t
        window_ms; ///< what it covers: the window asked for, or the server's limit if that is shorter
};

/// GET /trace?ms=N on the target's host: the last `window` of the server's timeline. A window longer than the
/// server keeps (its limits.max_trace_ms) is cut to that limit. Throws trace_error.
fetched_trace fetch_trace(const url& target, std::chrono::milliseconds window,
                          std::chrono::milliseconds timeout);

} // namespace duet::client
