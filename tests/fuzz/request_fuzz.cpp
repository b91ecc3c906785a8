// libFuzzer target: arbitrary bytes as an HTTP request, through what the server does with them before any
// handler runs: the server's request parser (Beast's basic_parser) with its limits, then routing, strict
// parameter validation, handler selection, and the JSON error a refusal would send. Any crash, sanitizer
// report or leak is a finding.
//   scripts/fuzz [SECONDS]   (builds with clang, runs with the seed corpus in tests/fuzz/corpus)
#include <duet/config.hpp>
#include <duet/server/handlers.hpp>
#include <duet/server/request_parser.hpp>
#include <duet/server/router.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace {

namespace http = boost::beast::http;

const duet::config& config()
{
    static const duet::config cfg;
    return cfg;
}

// The table as a server with a 3 MiB data file builds it: /io/file's kb is then bounded by the file (3072),
// below limits.max_file_kb.
const duet::server::router& routes()
{
    static const duet::server::router r{duet::server::make_endpoints(config(), 2, 3 * 1024 * 1024 + 100)};
    return r;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    duet::server::request req;
    duet::server::request_parser parser{req, config().server};
    parser.eager(true);

    // Feed the bytes as a socket would deliver them, then the end of the stream. A copy: the parser may
    // rewrite the version's minor digit in place, and libFuzzer's input is read-only.
    std::vector<char> bytes(data, data + size);
    boost::beast::error_code ec;
    auto input = boost::asio::buffer(bytes);
    while (input.size() > 0 && !ec && !parser.is_done()) {
        auto used = parser.put(input, ec);
        if (ec == http::error::need_more) {
            ec = {};
            break;
        }
        if (used == 0 && !ec) {
            break;
        }
        input += used;
    }
    if (!ec && !parser.is_done() && parser.got_some()) { // Beast asserts that some input came before the end
        parser.put_eof(ec);
    }
    if (ec) {
        // The refusal the session would answer with: every broken rule must map to one that serialises.
        volatile auto n = duet::server::refusal_for(ec, parser, config().server).body().size();
        (void)n;
        return 0;
    }
    if (!parser.is_header_done()) {
        return 0;
    }
    auto match = routes().route(req.method, req.target);
    if (!match) {
        volatile auto n = match.error().body().size(); // the refusal must serialise, whatever the bytes
        (void)n;
        return 0;
    }
    // A request that routes: its parameters were validated; echo them as the report would. The handler is
    // only looked at, never run: /io/call would call its upstream, /io/file read a file and mode=threads
    // need the blocking threads, none of which belongs in a fuzzer's loop.
    volatile auto n = match->params.to_json().dump().size();
    (void)n;
    volatile bool runs = match->ep->handler != nullptr || match->ep->plain != nullptr;
    (void)runs;
    return 0;
}
