// A response's bytes: the head formatted into a reused buffer, the body sent from where it is.
#include <duet/server/http_date.hpp>
#include <duet/server/report.hpp>
#include <duet/server/text.hpp>
#include <duet/server/wire.hpp>
#include <duet/version.hpp>

#include <boost/beast/http/status.hpp>

namespace duet::server {

using namespace std::literals;

namespace {

void append_field(std::string& out, std::string_view name, std::string_view value)
{
    out.append(name);
    out.append(": "sv);
    out.append(value);
    out.append("\r\n"sv);
}

const std::string server_field = "Server: duet/" + std::string{duet::version} + "\r\n";

// Room for a typical head (an /io/sleep response's is about 200 bytes), so that a head buffer given back
// while its request waited is allocated once rather than grown to size.
constexpr std::size_t typical_head = 256;

} // namespace

std::array<boost::asio::const_buffer, 2> wire_form(const response& res, std::string& head)
{
    head.clear();
    head.reserve(typical_head);
    head.append(res.version == 10 ? "HTTP/1.0 "sv : "HTTP/1.1 "sv);
    append_int(head, res.status_code());
    head.push_back(' ');
    head.append(boost::beast::http::obsolete_reason(res.status));
    head.append("\r\n"sv);
    if (!res.content_type.empty()) {
        append_field(head, "Content-Type"sv, res.content_type);
    }
    if (!res.request_id.empty()) {
        append_field(head, "X-Request-Id"sv, res.request_id);
    }
    if (res.event_stream) {
        head.append("Cache-Control: no-cache\r\n"sv);
        head.append("X-Accel-Buffering: no\r\n"sv); // tells nginx in front not to buffer the stream
    } else {
        head.append("Content-Length: "sv);
        append_int(head, static_cast<std::int64_t>(res.body.size()));
        head.append("\r\n"sv);
    }
    if (res.server_timing) {
        head.append("Server-Timing: "sv);
        append_server_timing(head, *res.server_timing);
        head.append("\r\n"sv);
    }
    if (!res.allow.empty()) {
        append_field(head, "Allow"sv, res.allow);
    }
    if (res.retry_after_s) {
        head.append("Retry-After: "sv);
        append_int(head, *res.retry_after_s);
        head.append("\r\n"sv);
    }
    head.append(res.extra_fields);
    if (res.vary_accept) {
        head.append("Vary: Accept\r\n"sv);
    }
    if (!res.keep_alive) {
        head.append("Connection: close\r\n"sv); // on 1.0 too, where it is the default: said, as nginx does
    } else if (res.version == 10) {
        head.append("Connection: keep-alive\r\n"sv);
    }
    head.append(date_field_now());
    head.append(server_field);
    head.append("\r\n"sv);
    if (res.head_only) {
        return {boost::asio::buffer(head), boost::asio::const_buffer{}};
    }
    return {boost::asio::buffer(head), boost::asio::buffer(res.body)};
}

} // namespace duet::server
