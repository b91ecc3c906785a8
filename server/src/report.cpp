#include <duet/server/report.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <random>

namespace duet::server {
namespace {

// Microseconds with nanosecond resolution, as exactly three decimals from the integer count: 3.217, 0.000.
void append_micros(std::string& out, std::chrono::nanoseconds d)
{
    const auto ns = std::max<std::int64_t>(d.count(), 0);
    fmt::format_to(std::back_inserter(out), "{}.{:03}", ns / 1000, ns % 1000);
}

// A JSON string: quotes, backslashes and control characters escaped (the text here is ASCII: ids, paths, our
// thread names).
void append_string(std::string& out, std::string_view text)
{
    out.push_back('"');
    for (char c : text) {
        if (c == '"' || c == '\\') {
            out.push_back('\\');
            out.push_back(c);
        } else if (static_cast<unsigned char>(c) < 0x20) {
            fmt::format_to(std::back_inserter(out), "\\u{:04x}", static_cast<unsigned>(c));
        } else {
            out.push_back(c);
        }
    }
    out.push_back('"');
}

void append_thread(std::string& out, const thread_ident* t)
{
    if (t == nullptr) {
        out += "null";
        return;
    }
    out += R"({"name":)";
    append_string(out, t->name);
    fmt::format_to(std::back_inserter(out), R"(,"tid":{}}})", t->tid);
}

bool valid_client_id(std::string_view id)
{
    return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
               c == '_' || c == ':' || c == '-';
    });
}

} // namespace

// Written out directly rather than built as a JSON document and then dumped: the report is on every /io and
// /cpu response, and its DOM cost more than the rest of an /io request's handling. Only the handler's result,
// the parameters and a split's parts, which are documents already, are dumped.
std::string json_text(const nlohmann::ordered_json& j)
{
    return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string report_body(const report_context& ctx, const handler_output& out)
{
    const auto& w = out.work;
    std::string body;
    body.reserve(640);
    body += R"({"result":)";
    body += json_text(out.result);
    body += R"(,"report":{"id":)";
    append_string(body, ctx.id);
    body += R"(,"endpoint":)";
    append_string(body, ctx.endpoint);
    body += R"(,"params":)";
    body += json_text(ctx.params);
    body += R"(,"model":)";
    append_string(body, w.model);
    body += R"(,"timing_us":{"total":)";
    append_micros(body, ctx.total);
    body += R"(,"queue":)";
    append_micros(body, w.queue);
    body += R"(,"service":)";
    append_micros(body, w.service);
    body += R"(},"threads":{"io":)";
    append_thread(body, ctx.io_thread);
    body += R"(,"worker":)";
    append_thread(body, w.worker);
    fmt::format_to(std::back_inserter(body), R"(}},"cores":{{"start":{},"end":{}}},"cpu_time_us":)",
                   w.core_start, w.core_end);
    append_micros(body, w.cpu);
    if (!out.split.is_null()) {
        body += R"(,"split":)";
        body += json_text(out.split);
    }
    body += "}}";
    return body;
}

void append_server_timing(std::string& out, const timing& t)
{
    // Milliseconds with three decimals, from whole microseconds: integer formatting, no floating point.
    auto append_ms = [&out](std::chrono::nanoseconds d) {
        const auto us = (std::max<std::int64_t>(d.count(), 0) + 500) / 1000;
        fmt::format_to(std::back_inserter(out), "{}.{:03}", us / 1000, us % 1000);
    };
    out += "queue;dur=";
    append_ms(t.queue);
    out += ", service;dur=";
    append_ms(t.service);
    out += ", total;dur=";
    append_ms(t.total);
}

std::string server_timing(const timing& t)
{
    std::string out;
    append_server_timing(out, t);
    return out;
}

request_ids::request_ids() : prefix_{std::random_device{}()} {}

std::string request_ids::next(std::string_view from_client)
{
    if (valid_client_id(from_client)) {
        return std::string{from_client};
    }
    return fmt::format("{:08x}-{:x}", prefix_, ++sequence_);
}

} // namespace duet::server
