#pragma once
// The Date header field's value, which every response carries (RFC 9110 §6.6.1), formatted once a second.

#include <ctime>
#include <string>
#include <string_view>

namespace duet::server {

/// `t` as an IMF-fixdate, the one form a server sends: "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 §5.6.7).
std::string format_http_date(std::time_t t);

/// The current time as an IMF-fixdate. Read from the coarse real-time clock (a few nanoseconds, no system
/// call) and formatted only when the second has changed since the calling thread last asked; the view stays
/// valid until that thread calls again.
std::string_view http_date_now() noexcept;

/// The whole header line, "Date: <http_date_now()>\r\n", which a response appends in one piece.
std::string_view date_field_now() noexcept;

} // namespace duet::server
