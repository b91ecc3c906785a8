#pragma once

#include <duet/server/http_types.hpp>

#include <boost/asio/buffer.hpp>

#include <array>
#include <string>

namespace duet::server {

/// A response as the bytes to send: its status line and fields formatted into `head` (a buffer the connection
/// reuses, so that its capacity is allocated once), then the body as it is — one gather write, no copy of the
/// body. The same bytes Beast's serializer writes for a response with a known length or none, at a fraction
/// of the cost. Both buffers refer to `head` and `res`, which must outlive the write.
std::array<boost::asio::const_buffer, 2> wire_form(const response& res, std::string& head);

} // namespace duet::server
