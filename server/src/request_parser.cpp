#include <duet/server/request_parser.hpp>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>

#include <algorithm>

namespace duet::server {

namespace beast = boost::beast;
namespace http = beast::http;

namespace {

// request_ids keeps a client's id only up to this length; a longer one is not worth storing.
constexpr std::size_t max_kept_id = 64;

} // namespace

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
    req_.body.clear();
}

void request_parser::on_request_impl(http::verb method, beast::string_view method_str,
                                     beast::string_view target, int version, beast::error_code& ec)
{
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
    if (name == http::field::expect) {
        req_.expect_continue = req_.expect_continue || beast::iequals(value, "100-continue");
    } else if (name == http::field::unknown && !id_seen_ && beast::iequals(name_string, "X-Request-Id")) {
        id_seen_ = true; // the first one counts, as for a fields container's lookup
        if (value.size() <= max_kept_id) {
            req_.request_id.assign(value.data(), value.size());
        }
    }
}

void request_parser::on_header_impl(beast::error_code&)
{
    req_.keep_alive = keep_alive();
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

} // namespace duet::server
