#pragma once
// One GET on a fresh connection, with a deadline, read whole: how duet-load asks a server about itself
// (/stats, /trace, the index), apart from the load.

#include <duet/client/options.hpp>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace duet::client {

/// The server could not be reached or did not answer in time; the message says which, in one line.
class http_get_error : public std::runtime_error
{
public:
    using std::runtime_error::runtime_error;
};

struct http_answer
{
    unsigned status = 0;
    std::string body;
};

/// GET path on target's host and port, all of it (connection, request, answer) within `timeout`; a body
/// beyond max_bytes is an error.
http_answer http_get(const url& target, const std::string& path, std::chrono::milliseconds timeout,
                     std::uint64_t max_bytes = 64ULL << 20U);

} // namespace duet::client
