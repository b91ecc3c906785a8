// The request parser's callbacks (what duet keeps of a request, and the rules Beast leaves to it), and the
// refusal each broken rule is answered with.
#include <duet/server/request_ids.hpp>
#include <duet/server/request_parser.hpp>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>

#include <algorithm>
#include <array>
#include <functional>
#include <string_view>

namespace duet::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

bool is_digit(char c) noexcept
{
    return c >= '0' && c <= '9';
}

// RFC 3986's unreserved and sub-delims, the characters of a registered name besides %XX, but the comma: a
// Host with one is two that an intermediary joined into a list. A table, since every request's Host is
// checked.
constexpr auto name_chars = [] {
    std::array<bool, 256> table{};
    for (char c : std::string_view{"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                   "-._~!$&'()*+;="}) {
        table[static_cast<unsigned char>(c)] = true;
    }
    return table;
}();

bool is_name_char(char c) noexcept
{
    return name_chars[static_cast<unsigned char>(c)];
}

bool is_hex(char c) noexcept
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool all_digits(std::string_view s) noexcept
{
    return std::all_of(s.begin(), s.end(), is_digit);
}

// OWS around a list element (RFC 9110 §5.6.1).
std::string_view trim(std::string_view s) noexcept
{
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

// A request line whose version is HTTP/D.D (the only form Beast reads), split at the version: its major and
// minor digits' positions in `line`, or npos.
std::size_t version_at(std::string_view line) noexcept
{
    constexpr std::string_view prefix = " HTTP/";
    if (line.size() < prefix.size() + 3) {
        return std::string_view::npos;
    }
    const auto at = line.size() - 3;
    if (line.substr(at - prefix.size(), prefix.size()) != prefix || !is_digit(line[at]) ||
        line[at + 1] != '.' || !is_digit(line[at + 2])) {
        return std::string_view::npos;
    }
    return at;
}

} // namespace

bool valid_host(std::string_view value) noexcept
{
    std::string_view port;
    if (!value.empty() && value.front() == '[') {
        // IP-literal: an IPv6 address or IPvFuture in brackets; its inside is checked for its alphabet only.
        const auto close = value.find(']');
        if (close == std::string_view::npos || close == 1) {
            return false;
        }
        const auto inside = value.substr(1, close - 1);
        if (!std::all_of(inside.begin(), inside.end(), [](char c) { return is_name_char(c) || c == ':'; })) {
            return false;
        }
        const auto rest = value.substr(close + 1);
        if (!rest.empty() && rest.front() != ':') {
            return false;
        }
        port = rest.empty() ? rest : rest.substr(1);
    } else {
        // A registered name or an IPv4 address: runs of name characters, with %XX between them.
        std::size_t i = 0;
        for (;;) {
            while (i < value.size() && is_name_char(value[i])) {
                ++i;
            }
            if (i + 2 < value.size() && value[i] == '%' && is_hex(value[i + 1]) && is_hex(value[i + 2])) {
                i += 3;
                continue;
            }
            break;
        }
        if (i < value.size() && value[i] != ':') {
            return false;
        }
        port = i < value.size() ? value.substr(i + 1) : std::string_view{};
    }
    return all_digits(port); // port = *DIGIT: "host:" is valid, "host:8a" and a second colon are not
}

request_parser::request_parser(request& req, const duet::server_config& sc)
    : req_{req}, max_target_{static_cast<std::size_t>(sc.max_target_bytes)},
      max_fields_{static_cast<std::size_t>(sc.max_header_count)}
{
    header_limit(static_cast<std::uint32_t>(sc.max_header_bytes));
    body_limit(static_cast<std::uint64_t>(sc.max_body_bytes));
    req_.method = http::verb::unknown;
    req_.unknown_method.clear();
    req_.target.clear();
    req_.version = 11;
    req_.keep_alive = true;
    req_.expect_continue = false;
    req_.request_id.clear();
    req_.accept.clear();
    req_.body.clear();
}

std::size_t request_parser::put(net::mutable_buffer buffer, beast::error_code& ec)
{
    auto* const p = static_cast<char*>(buffer.data());
    const auto n = buffer.size();
    std::size_t skipped = 0;
    if (!got_some()) {
        // Empty lines before the request line (CRLF, or a bare LF, which §2.2 also allows): an old client's
        // CRLF after a body, say. They count as the request's bytes, so the header limit and deadline bound
        // them.
        while (skipped < n &&
               (p[skipped] == '\n' || (p[skipped] == '\r' && skipped + 1 < n && p[skipped + 1] == '\n'))) {
            skipped += p[skipped] == '\r' ? 2 : 1;
        }
        skipped_blank_ = skipped_blank_ || skipped > 0;
        if (skipped == n || (skipped + 1 == n && p[skipped] == '\r')) {
            ec = http::error::need_more; // nothing but blank lines so far (a CR may be half of one)
            return skipped;
        }
    }
    const net::const_buffer rest{p + skipped, n - skipped};
    input_ = {p + skipped, n - skipped};
    auto used = basic_parser::put(rest, ec);
    if (ec && ec == http::error::bad_version && !is_header_done()) {
        // Beast reads 1.0 and 1.1 only, and says so as soon as it has the version's 8 bytes, before the
        // line's end. A later 1.x SHOULD be served as 1.1 (RFC 9110 §2.5); another major version is one this
        // server does not speak (505). Beast has consumed nothing of the line yet.
        const std::string_view text{p + skipped, n - skipped};
        const auto line = text.substr(0, text.find_first_of("\r\n"));
        const auto at = version_at(line);
        if (at != std::string_view::npos && line[at] == '1' && line[at + 2] > '1') {
            p[skipped + at + 2] = '1';
            ec = {};
            used = basic_parser::put(rest, ec);
        } else if (at != std::string_view::npos && line[at] != '1') {
            violated_ = violation::unsupported_version;
        }
    }
    if (ec && violated_ == violation::none) {
        // Beast refuses some framing conflicts itself, before on_field_impl sees the field: name them as
        // ours.
        if (ec == http::error::bad_transfer_encoding) {
            // Transfer-Encoding after Content-Length, or chunked in a second field.
            violated_ = length_seen_ ? violation::coding_with_length : violation::coding_not_chunked;
        } else if (ec == http::error::bad_content_length && te_seen_) {
            violated_ = violation::coding_with_length;
        }
    }
    return skipped + used;
}

void request_parser::on_request_impl(http::verb method, beast::string_view method_str,
                                     beast::string_view target, int version, beast::error_code& ec)
{
    if (method == http::verb::connect) {
        // A tunnel is a proxy's job. Refused before the header, and the connection closed: a client that
        // sends its tunnel's bytes at once must not have them read as requests.
        violated_ = violation::connect_method;
        ec = http::error::bad_method;
        return;
    }
    if (target.size() > max_target_) {
        violated_ = violation::target_too_long;
        ec = http::error::bad_target;
        return;
    }
    req_.method = method;
    if (method == http::verb::unknown) {
        req_.unknown_method.assign(method_str.data(), method_str.size());
    }
    req_.target.assign(target.data(), target.size());
    req_.version = static_cast<unsigned>(version);
}

void request_parser::on_response_impl(int, beast::string_view, int, beast::error_code& ec)
{
    ec = http::error::bad_version; // unreachable: this is a request parser
}

void request_parser::on_field_impl(http::field name, beast::string_view name_string, beast::string_view value,
                                   beast::error_code& ec)
{
    if (++fields_ > max_fields_) {
        violated_ = violation::too_many_fields;
        ec = http::error::bad_field;
        return;
    }
    if (is_header_done()) {
        return; // a trailer, after a chunked body: never merged into the header (RFC 9110 §6.5.1)
    }
    if (folded(name_string, value)) {
        violated_ = violation::folded_field;
        ec = http::error::bad_field;
        return;
    }
    switch (name) {
    case http::field::host:
        hosts_ = static_cast<std::uint8_t>(std::min(hosts_ + 1, 2));
        host_valid_ = host_valid_ && valid_host({value.data(), value.size()});
        break;
    case http::field::content_length:
        length_seen_ = true; // Beast has checked its value (and refused one after a chunked coding)
        break;
    case http::field::transfer_encoding:
        on_transfer_encoding(value);
        break;
    case http::field::expect:
        req_.expect_continue = req_.expect_continue || beast::iequals(value, "100-continue");
        break;
    case http::field::accept:
        // A list field may come split over several lines; joined, it reads as one (RFC 9110 §5.3).
        if (!req_.accept.empty()) {
            req_.accept.append(", ");
        }
        req_.accept.append(value.data(), value.size());
        break;
    case http::field::unknown:
        if (!id_seen_ && beast::iequals(name_string, "X-Request-Id")) {
            id_seen_ = true; // the first one counts, as for a fields container's lookup
            if (value.size() <= request_ids::max_client_id) {
                req_.request_id.assign(value.data(), value.size());
            }
        }
        break;
    default:
        break;
    }
}

// Whether Beast unfolded the value from several lines (obs-fold, RFC 9112 §5.2): then it is either a copy,
// outside the input, or it begins on a line after its name's. Readers that keep or drop the continuation
// disagree on the value, so a folded field is refused like any ambiguous framing.
bool request_parser::folded(beast::string_view name, beast::string_view value) const noexcept
{
    const std::less_equal<const char*> le;
    if (!le(input_.data(), value.data()) || !le(value.data(), input_.data() + input_.size())) {
        return true;
    }
    // Between the name and the value: the colon and spaces, or (folded) a line's end. Usually two bytes.
    for (const char* c = name.data() + name.size(); c != value.data(); ++c) {
        if (*c == '\n') {
            return true;
        }
    }
    return false;
}

// The codings of one Transfer-Encoding field, after those of the fields before it (a list may be split over
// several fields, RFC 9110 §5.3). Each is a token with optional parameters; empty list elements do not count.
void request_parser::on_transfer_encoding(beast::string_view value)
{
    te_seen_ = true;
    std::string_view list{value.data(), value.size()};
    while (!list.empty()) {
        const auto comma = list.find(',');
        const auto element = list.substr(0, comma);
        const auto coding = trim(element.substr(0, element.find(';')));
        list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
        if (coding.empty()) {
            continue;
        }
        chunked_before_last_ = chunked_before_last_ || chunked_last_;
        // chunked takes no parameters: "chunked;x=1" is a coding a proxy may not read as chunked.
        chunked_last_ = beast::iequals(trim(element), "chunked");
        codings_ = static_cast<std::uint8_t>(std::min(codings_ + 1, 2));
    }
}

void request_parser::on_header_impl(beast::error_code& ec)
{
    req_.keep_alive = keep_alive();
    // A request that two readers could frame differently is refused outright, never answered and read on
    // from.
    if (te_seen_) {
        if (req_.version < 11) {
            violated_ = violation::coding_on_http10; // §6.1: faulty framing, even with a Content-Length
        } else if (length_seen_) {
            violated_ = violation::coding_with_length; // §6.3: the classic smuggling pair
        } else if (!chunked() || !chunked_last_ || chunked_before_last_) {
            // §6.1: the body's end cannot be found. Both readings must say chunked: Beast's frames the body.
            violated_ = violation::coding_not_chunked;
        } else if (codings_ > 1) {
            violated_ =
                violation::unsupported_coding; // chunked last, but gzip (say) under it: not decoded here
        }
        if (violated_ != violation::none) {
            ec = http::error::bad_transfer_encoding;
            return;
        }
    }
    if (hosts_ > 1) {
        violated_ = violation::duplicate_host;
    } else if (hosts_ == 0 && req_.version >= 11) {
        violated_ = violation::missing_host;
    } else if (!host_valid_) {
        violated_ = violation::bad_host;
    }
    if (violated_ != violation::none) {
        ec = http::error::bad_field;
    }
}

void request_parser::on_body_init_impl(const boost::optional<std::uint64_t>& content_length,
                                       beast::error_code&)
{
    // Beast has refused a length over the body limit already; within it, one allocation takes the body.
    if (content_length) {
        req_.body.reserve(static_cast<std::size_t>(*content_length));
    }
}

std::size_t request_parser::on_body_impl(beast::string_view body, beast::error_code&)
{
    req_.body.append(body.data(), body.size());
    return body.size();
}

void request_parser::on_chunk_header_impl(std::uint64_t, beast::string_view, beast::error_code&) {}

std::size_t request_parser::on_chunk_body_impl(std::uint64_t, beast::string_view body, beast::error_code&)
{
    req_.body.append(body.data(), body.size());
    return body.size();
}

void request_parser::on_finish_impl(beast::error_code&) {}

namespace {

http_error refusal(http::status status, const char* code, std::string message,
                   std::optional<std::int64_t> limit = std::nullopt)
{
    return http_error{.status = status, .code = code, .message = std::move(message), .limit = limit};
}

} // namespace

http_error refusal_for(const beast::error_code& ec, const request_parser& parser,
                       const duet::server_config& sc)
{
    using v = request_parser::violation;
    switch (parser.violated()) {
    case v::none:
        break;
    case v::target_too_long:
        return refusal(http::status::uri_too_long, "target_too_long",
                       "the request target exceeds the limit (config key server.max_target_bytes)",
                       sc.max_target_bytes);
    case v::too_many_fields:
        return refusal(http::status::request_header_fields_too_large, "too_many_headers",
                       "the request has more header fields than allowed (config key server.max_header_count)",
                       sc.max_header_count);
    case v::missing_host:
        return refusal(http::status::bad_request, "missing_host",
                       "an HTTP/1.1 request must have a Host header field (RFC 9112 section 3.2)");
    case v::duplicate_host:
        return refusal(http::status::bad_request, "duplicate_host",
                       "the request has more than one Host header field (RFC 9112 section 3.2)");
    case v::bad_host:
        return refusal(http::status::bad_request, "bad_host",
                       "the Host header field is not a valid host[:port] (RFC 9112 section 3.2)");
    case v::coding_not_chunked:
        return refusal(http::status::bad_request, "bad_framing",
                       "Transfer-Encoding must end with chunked, once, for the body to be framed (RFC 9112 "
                       "section 6.1)");
    case v::coding_with_length:
        return refusal(
            http::status::bad_request, "bad_framing",
            "a request must not have both Transfer-Encoding and Content-Length (RFC 9112 section 6.3)");
    case v::coding_on_http10:
        return refusal(http::status::bad_request, "bad_framing",
                       "HTTP/1.0 has no Transfer-Encoding: the body cannot be framed (RFC 9112 section 6.1)");
    case v::unsupported_coding:
        return refusal(http::status::not_implemented, "unsupported_transfer_coding",
                       "the only transfer coding this server decodes is chunked");
    case v::folded_field:
        return refusal(http::status::bad_request, "obsolete_fold",
                       "a header field is folded over several lines (obs-fold, RFC 9112 section 5.2)");
    case v::connect_method:
        return refusal(http::status::not_implemented, "not_implemented",
                       "CONNECT asks a proxy for a tunnel; this is an origin server");
    case v::unsupported_version:
        return refusal(http::status::http_version_not_supported, "version_not_supported",
                       "this server speaks HTTP/1.0 and HTTP/1.1");
    }
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
        return refusal(http::status::request_header_fields_too_large, "header_too_large",
                       "the request line and headers exceed the limit (config key server.max_header_bytes)",
                       sc.max_header_bytes);
    }
    if (ec == http::error::body_limit) {
        return refusal(http::status::payload_too_large, "body_too_large",
                       "the request body exceeds the limit (config key server.max_body_bytes)",
                       sc.max_body_bytes);
    }
    return refusal(http::status::bad_request, "bad_request", "malformed HTTP request: " + ec.message());
}

} // namespace duet::server
