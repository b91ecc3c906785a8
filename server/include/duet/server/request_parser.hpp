#pragma once

#include <duet/config.hpp>
#include <duet/server/http_types.hpp>

#include <boost/beast/http/basic_parser.hpp>

#include <cstdint>

namespace duet::server {

/// Beast's HTTP/1.1 request parser, keeping only what duet reads. It is Beast's basic_parser (the grammar,
/// the header and body limits, chunked bodies), but instead of storing every header field in a fields
/// container (an allocation per field) it writes the few duet uses into a request the connection reuses, and
/// enforces the bounds Beast has no setting for (target length, field count) as it goes. One per request;
/// feed it with put() (synchronously: the session does the reading).
class request_parser : public boost::beast::http::basic_parser<true>
{
public:
    /// A bound the parser enforces besides Beast's own (whose errors put() reports as they are).
    enum class violation : std::uint8_t {
        none,
        target_too_long, ///< over server.max_target_bytes
        too_many_fields, ///< over server.max_header_count
    };

    /// Clears `req` (keeping its strings' capacity) and parses into it, within the limits of `sc`.
    request_parser(request& req, const duet::server_config& sc);

    /// Why put() failed with bad_target or bad_field, when it was a bound of ours rather than the grammar.
    violation violated() const noexcept { return violated_; }

private:
    void on_request_impl(boost::beast::http::verb method, boost::beast::string_view method_str,
                         boost::beast::string_view target, int version,
                         boost::beast::error_code& ec) override;
    void on_response_impl(int code, boost::beast::string_view reason, int version,
                          boost::beast::error_code& ec) override;
    void on_field_impl(boost::beast::http::field name, boost::beast::string_view name_string,
                       boost::beast::string_view value, boost::beast::error_code& ec) override;
    void on_header_impl(boost::beast::error_code& ec) override;
    void on_body_init_impl(const boost::optional<std::uint64_t>& content_length,
                           boost::beast::error_code& ec) override;
    std::size_t on_body_impl(boost::beast::string_view body, boost::beast::error_code& ec) override;
    void on_chunk_header_impl(std::uint64_t size, boost::beast::string_view extensions,
                              boost::beast::error_code& ec) override;
    std::size_t on_chunk_body_impl(std::uint64_t remain, boost::beast::string_view body,
                                   boost::beast::error_code& ec) override;
    void on_finish_impl(boost::beast::error_code& ec) override;

    request& req_;
    std::size_t max_target_;
    std::size_t max_fields_;
    std::size_t fields_ = 0;
    bool id_seen_ = false;
    violation violated_ = violation::none;
};

} // namespace duet::server
