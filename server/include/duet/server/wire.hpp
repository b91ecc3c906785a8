#pragma once
// A response as the bytes to send, formatted by hand on the hot path.

#include <duet/server/http_types.hpp>

#include <boost/asio/buffer.hpp>

#include <array>
#include <string>

namespace duet::server {

/// A response as the bytes to send: its status line and header fields formatted into `head` (a buffer the
/// connection reuses, so that its capacity is allocated once), then the body as it is: one gather write, no
/// copy of the body. Every response carries Date and Server; Content-Length unless it is an event stream;
/// Connection: close when the connection ends after it, keep-alive when an HTTP/1.0 one persists. Both
/// buffers refer to `head` and `res`, which must outlive the write; for a HEAD the second is empty.
std::array<boost::asio::const_buffer, 2> wire_form(const response& res, std::string& head);

} // namespace duet::server
