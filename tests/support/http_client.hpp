#pragma once
// A small HTTP/1.1 client over real loopback sockets, for tests. Every call has a deadline, so a broken
// server fails a test instead of hanging it.

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace duet::test {

using namespace std::chrono_literals;

struct http_reply
{
    unsigned status = 0;                        ///< 0: no response (connection failed, closed or timed out)
    std::string error;                          ///< why there is no response, when status is 0
    std::map<std::string, std::string> headers; ///< names lower-cased
    std::string body;
    bool keep_alive = false;
    std::chrono::steady_clock::duration elapsed{}; ///< request written -> response read

    std::string header(const std::string& lower_name) const;
    nlohmann::json json() const { return nlohmann::json::parse(body); }
};

/// One keep-alive connection to 127.0.0.1:port.
class client_connection
{
public:
    explicit client_connection(std::uint16_t port, std::chrono::milliseconds timeout = 30s);
    ~client_connection();
    client_connection(const client_connection&) = delete;
    client_connection& operator=(const client_connection&) = delete;

    http_reply request(boost::beast::http::verb method, std::string_view target,
                       const std::vector<std::pair<std::string, std::string>>& headers = {});
    http_reply get(std::string_view target) { return request(boost::beast::http::verb::get, target); }

    /// Waits up to `within` for the server to close the connection; true if it did (EOF or reset).
    bool closed_by_server(std::chrono::milliseconds within);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

/// GET on a fresh connection.
http_reply http_get(std::uint16_t port, std::string_view target, std::chrono::milliseconds timeout = 30s);

/// Every target at once, each on its own connection, from one client thread; replies in the order of targets.
std::vector<http_reply> get_concurrently(std::uint16_t port, const std::vector<std::string>& targets,
                                         std::chrono::milliseconds timeout = 60s);

/// A client of a server-sent-events endpoint: sends the GET, reads the header, then one event at a time.
class event_stream
{
public:
    /// receive_buffer > 0 sets SO_RCVBUF before connecting (a small one makes a reader that stalls stall
    /// soon).
    event_stream(std::uint16_t port, std::string_view target, int receive_buffer = 0,
                 std::chrono::milliseconds timeout = 10s);
    ~event_stream();
    event_stream(const event_stream&) = delete;
    event_stream& operator=(const event_stream&) = delete;

    /// The status line and header block, as received.
    const std::string& head() const { return head_; }

    /// The next event's text (its lines, without the blank line that ends it); nullopt on close or timeout.
    std::optional<std::string> next(std::chrono::milliseconds timeout = 10s);

    /// Reads and discards until the server closes the connection; true if it did within timeout.
    bool wait_closed(std::chrono::milliseconds timeout);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
    std::string head_;
};

/// Writes raw bytes on a new connection, then reads until the server closes it or the timeout passes.
struct raw_reply
{
    std::string bytes;   ///< everything the server sent
    bool closed = false; ///< the server closed the connection (EOF or reset) within the timeout
};
raw_reply raw_exchange(std::uint16_t port, std::string_view bytes, std::chrono::milliseconds timeout = 5s);

/// A connection for writing raw bytes at a chosen pace: what to send, and when, is the test's.
class raw_connection
{
public:
    explicit raw_connection(std::uint16_t port);
    ~raw_connection();
    raw_connection(const raw_connection&) = delete;
    raw_connection& operator=(const raw_connection&) = delete;

    void send(std::string_view bytes);
    /// Reads until what was read (since the last call) contains `needle`, the server closes, or the timeout
    /// passes; returns what was read.
    std::string read_until(std::string_view needle, std::chrono::milliseconds timeout = 5s);
    /// Reads and discards until the server closes the connection; true if it did within the timeout.
    bool closed_by_server(std::chrono::milliseconds timeout);
    /// Closes this end now.
    void close();

private:
    /// recv into chunk once the socket is readable: its result, or -2 if it is not readable by `until`.
    long receive_by(std::chrono::steady_clock::time_point until, std::array<char, 4096>& chunk);

    int fd_ = -1;
};

} // namespace duet::test
