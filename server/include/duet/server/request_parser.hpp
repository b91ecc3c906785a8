#pragma once
// The server's HTTP/1.1 request parser: Beast's grammar and limits, the few fields duet reads, and the
// framing and Host checks that Beast leaves to the application.

#include <duet/config.hpp>
#include <duet/server/http_error.hpp>
#include <duet/server/http_types.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>

#include <cstdint>

namespace duet::server {

/// Beast's basic_parser (grammar, header and body limits, chunked bodies), writing the few fields duet uses
/// into a request the connection reuses instead of a fields container (an allocation per field), and
/// enforcing what Beast leaves to its user: the target length and field count, one valid Host (RFC 9112
/// §3.2), and a body framing every reader agrees on (§6.1, §6.3; anything else is how a request is smuggled
/// past a proxy). One per request, fed synchronously with put().
class request_parser : public boost::beast::http::basic_parser<true>
{
public:
    /// A rule the parser enforces besides Beast's own grammar (whose errors put() reports as they are).
    enum class violation : std::uint8_t {
        none,
        target_too_long,    ///< over server.max_target_bytes
        too_many_fields,    ///< over server.max_header_count
        missing_host,       ///< an HTTP/1.1 request without Host
        duplicate_host,     ///< more than one Host field
        bad_host,           ///< a Host that is not host[:port]
        coding_not_chunked, ///< Transfer-Encoding whose final coding is not chunked: no way to frame the body
        coding_with_length, ///< Transfer-Encoding and Content-Length both
        coding_on_http10,   ///< Transfer-Encoding on HTTP/1.0, which has none
        unsupported_coding, ///< a transfer coding besides chunked (gzip, …): 501
        folded_field,       ///< a field value folded over lines (obs-fold)
        connect_method,     ///< CONNECT, a proxy's method: 501
        unsupported_version, ///< an HTTP major version other than 1: 505
    };

    /// Clears `req` (keeping its strings' capacity) and parses into it, within the limits of `sc`.
    request_parser(request& req, const duet::server_config& sc);

    /// basic_parser::put, with two allowances of RFC 9112 §2.2 for what precedes the header: empty lines
    /// before the request line are skipped (and returned as used), and HTTP/1.2 to 1.9 is read as HTTP/1.1.
    /// The latter rewrites the minor digit in the buffer, which is why it is mutable.
    std::size_t put(boost::asio::mutable_buffer buffer, boost::beast::error_code& ec);

    /// Whether any byte of this request has arrived, empty lines before it included: the header deadline
    /// runs.
    bool started() const noexcept { return got_some() || skipped_blank_; }

    /// Why put() failed, when it was a rule of ours rather than Beast's grammar.
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

    void on_transfer_encoding(boost::beast::string_view value);
    bool folded(boost::beast::string_view name, boost::beast::string_view value) const noexcept;

    request& req_;
    std::size_t max_target_;
    std::size_t max_fields_;
    std::size_t fields_ = 0;
    boost::beast::string_view input_; ///< what put() passed to Beast: a field value outside it was unfolded
    bool id_seen_ = false;
    bool skipped_blank_ = false;
    std::uint8_t hosts_ = 0; ///< Host fields seen (counting stops at 2)
    bool host_valid_ = true;
    bool length_seen_ = false; ///< Content-Length
    // Transfer-Encoding, every field's codings in order: how many, and where chunked is among them.
    std::uint8_t codings_ = 0; ///< counting stops at 2
    bool te_seen_ = false;
    bool chunked_last_ = false;
    bool chunked_before_last_ = false;
    violation violated_ = violation::none;
};

/// The refusal to answer a request that put() failed on, before the connection closes (the stream cannot be
/// resynchronised): 400, 413, 414, 431, 501 or 505, naming the rule or the config key of the limit it broke.
http_error refusal_for(const boost::beast::error_code& ec, const request_parser& parser,
                       const duet::server_config& sc);

/// Whether `value` is a valid Host field value: uri-host [ ":" port ] (RFC 9112 §3.2, RFC 3986 §3.2.2), where
/// uri-host is a registered name (possibly empty), an IPv4 address or a bracketed IP literal.
bool valid_host(std::string_view value) noexcept;

} // namespace duet::server
