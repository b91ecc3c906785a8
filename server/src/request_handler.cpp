// From a parsed request to its response, touching no socket: routing and the answers that need no waiting in
// a plain function, and the coroutine that awaits a handler and builds the report.
#include <duet/server/request_handler.hpp>
#include <duet/server/server_state.hpp>
#include <duet/server/trace.hpp>

namespace duet::server {

namespace http = boost::beast::http;
using std::chrono::steady_clock;

namespace {

// The finishing touches every response gets: keep-alive when the client asked for it and neither the
// handler (an event stream) nor a drain ends the connection, and for HEAD the header alone, with the
// Content-Length GET would send.
response finish(server_state& st, const request& req, response res)
{
    res.keep_alive = res.keep_alive && req.keep_alive && !st.draining;
    res.head_only = req.method == http::verb::head;
    return res;
}

response json_response(http::status status, std::string body, const request& req, std::string id)
{
    response res{status, req.version};
    res.content_type = "application/json";
    res.request_id = std::move(id);
    res.body = std::move(body);
    return res;
}

response error_with_id(server_state& st, const request& req, const http_error& e, std::string id,
                       std::chrono::nanoseconds total)
{
    auto res = json_response(e.status, e.body(), req, std::move(id));
    res.server_timing = timing{{}, {}, total};
    res.allow = e.allow;
    res.retry_after_s = e.retry_after_s;
    return finish(st, req, std::move(res));
}

} // namespace

response error_response(server_state& st, const request& req, const http_error& e)
{
    return error_with_id(st, req, e, st.ids.next(req.request_id), {});
}

response refusal_response(server_state& st, const http_error& e, unsigned version)
{
    request unread{boost::beast::http::verb::get, "", version == 10 ? 10U : 11U};
    unread.keep_alive = false;
    return error_response(st, unread, e);
}

namespace {

// The response to a reporting handler's outcome: its error, its binary body, or its result with the report.
response respond(server_state& st, const request& req, const endpoint& ep, handler_call& call,
                 steady_clock::time_point received, handler_result out)
{
    auto total = steady_clock::now() - received;
    std::string id = std::move(call.id);
    if (!out) {
        return error_with_id(st, req, out.error(), std::move(id), total);
    }
    const auto& params = call.params;
    response res;
    if (out->binary) {
        res = response{http::status::ok, req.version};
        res.content_type = out->binary->content_type;
        res.request_id = std::move(id);
        res.body = std::move(out->binary->data);
    } else {
        report_context ctx{id, ep.path, &params, &st.io_thread, total};
        auto body = report_body(ctx, *out);
        res = json_response(http::status::ok, std::move(body), req, std::move(id));
    }
    res.server_timing = timing{out->work.queue, out->work.service, total};
    res.lease = std::move(out->lease);
    return finish(st, req, std::move(res));
}

} // namespace

routed_request route_request(server_state& st, const request& req, steady_clock::time_point received)
{
    if (req.method == http::verb::options && req.target == "*") {
        // OPTIONS * asks about the server as a whole (RFC 9110 9.3.7): the methods its endpoints take.
        st.stats.request_started(st.stats.other());
        response res{http::status::ok, req.version};
        res.allow = "GET, HEAD";
        return {st.stats.other(), finish(st, req, std::move(res)), st.trace.next_seq()};
    }
    auto match = st.routes.route(req.method, req.target);
    // A refused request still counts for the endpoint it was addressed to, when there is one.
    const endpoint* addressed = match ? match->ep : st.routes.find(req.target);
    const auto counted = addressed != nullptr ? st.routes.index_of(addressed) : st.stats.other();
    st.stats.request_started(counted);
    const auto seq = st.trace.next_seq();
    if (!match) {
        return {counted,
                error_with_id(st, req, match.error(), st.ids.next(req.request_id),
                              steady_clock::now() - received),
                seq};
    }
    const endpoint& ep = *match->ep;
    if (ep.plain != nullptr) {
        return {counted, finish(st, req, ep.plain(st, req)), seq};
    }
    return {counted,
            handler_call{
                .ep = &ep, .params = std::move(match->params), .id = st.ids.next(req.request_id), .seq = seq},
            seq};
}

// A coroutine frame keeps every local for the whole request, and a connection's frames are most of what it
// costs in memory while it waits; a frame over about 1 KB is also too big for Asio's recycling cache, and
// costs a malloc and a free per request. So the work that does not wait is done in plain functions.
task<response> call_handler(server_state& st, const request& req, handler_call call,
                            steady_clock::time_point received)
{
    co_return respond(
        st, req, *call.ep, call, received,
        co_await call.ep->handler(st, {.params = call.params, .trace_seq = call.seq, .id = call.id}));
}

task<response> handle_request(server_state& st, const request& req, steady_clock::time_point received,
                              std::size_t& endpoint)
{
    auto routed = route_request(st, req, received);
    endpoint = routed.endpoint;
    if (auto* call = std::get_if<handler_call>(&routed.next)) {
        co_return co_await call_handler(st, req, std::move(*call), received);
    }
    co_return std::move(std::get<response>(routed.next));
}

} // namespace duet::server
