#include <duet/server/request_handler.hpp>
#include <duet/server/server_state.hpp>
#include <duet/version.hpp>

namespace duet::server {

namespace http = boost::beast::http;
using std::chrono::steady_clock;

namespace {

const std::string server_name = "duet/" + std::string{duet::version};

// The finishing touches every response gets: Server, keep-alive (never while draining), and no body for HEAD
// while Content-Length still gives the size GET would send.
response finish(server_state& st, const request& req, response res)
{
    res.set(http::field::server, server_name);
    res.keep_alive(req.keep_alive() && !st.draining);
    if (req.method() == http::verb::head) {
        auto length = res.body().size();
        res.body().clear();
        res.content_length(length);
    }
    return res;
}

response json_response(http::status status, std::string body, const request& req, std::string_view id)
{
    response res{status, req.version()};
    res.set(http::field::content_type, "application/json");
    res.set("X-Request-Id", id);
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

response error_with_id(server_state& st, const request& req, const http_error& e, std::string_view id,
                       std::chrono::nanoseconds total)
{
    auto res = json_response(e.status, e.body(), req, id);
    res.set("Server-Timing", server_timing({}, {}, total));
    if (!e.allow.empty()) {
        res.set(http::field::allow, e.allow);
    }
    if (e.retry_after_s) {
        res.set(http::field::retry_after, std::to_string(*e.retry_after_s));
    }
    return finish(st, req, std::move(res));
}

} // namespace

response error_response(server_state& st, const request& req, const http_error& e)
{
    auto id = st.ids.next(req["X-Request-Id"]);
    return error_with_id(st, req, e, id, {});
}

boost::asio::awaitable<response> handle_request(server_state& st, const request& req,
                                                steady_clock::time_point received, request_tally& tally)
{
    auto match = st.routes.route(req.method(), req.target());
    // A refused request still counts for the endpoint it was addressed to, when there is one.
    const endpoint* addressed = match ? match->ep : st.routes.find(req.target());
    tally.endpoint = addressed != nullptr ? st.routes.index_of(addressed) : st.stats.other();
    st.stats.request_started(tally.endpoint);
    if (match && match->ep->plain != nullptr) {
        auto res = match->ep->plain(st, req);
        tally.stream =
            match->ep->streams && req.method() == http::verb::get && res.result() == http::status::ok;
        co_return finish(st, req, std::move(res));
    }
    auto id = st.ids.next(req["X-Request-Id"]);
    if (!match) {
        co_return error_with_id(st, req, match.error(), id, steady_clock::now() - received);
    }
    const endpoint& ep = *match->ep;
    auto out = co_await ep.handler(st, match->params);
    auto total = steady_clock::now() - received;
    if (!out) {
        co_return error_with_id(st, req, out.error(), id, total);
    }
    response res;
    if (out->binary) {
        res = response{http::status::ok, req.version()};
        res.set(http::field::content_type, out->binary->content_type);
        res.set("X-Request-Id", id);
        res.body() = std::move(out->binary->data);
        res.prepare_payload();
    } else {
        report_context ctx{id, ep.path, match->params.to_json(), &st.io_thread, total};
        res = json_response(http::status::ok, report_body(ctx, *out), req, id);
    }
    res.set("Server-Timing", server_timing(out->work.queue, out->work.service, total));
    co_return finish(st, req, std::move(res));
}

} // namespace duet::server
