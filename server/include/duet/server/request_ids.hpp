#pragma once
// Request ids: the X-Request-Id of every /io and /cpu response, the client's own when it is safe to echo.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace duet::server {

/// Request ids: "<8 hex digits fixed per server>-<sequence in hex>", or the client's own X-Request-Id when
/// it is 1 to max_client_id characters of [A-Za-z0-9._:-] (so a proxy's id carries through). I/O thread only.
class request_ids
{
public:
    static constexpr std::size_t max_client_id = 64;

    request_ids();
    std::string next(std::string_view from_client);

private:
    std::string prefix_; ///< the 8 hex digits and the dash
    std::uint64_t sequence_ = 0;
};

} // namespace duet::server
