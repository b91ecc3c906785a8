// The report's JSON body and the Server-Timing header, written out directly: on every /io and /cpu response.
#include <duet/server/report.hpp>
#include <duet/server/text.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <charconv>
#include <cstdint>
#include <iterator>

namespace duet::server {

using namespace std::literals;

namespace {

// Microseconds with nanosecond resolution, as exactly three decimals from the integer count: 3.217, 0.000.
void append_micros(std::string& out, std::chrono::nanoseconds d)
{
    append_thousandths(out, d.count());
}

bool needs_escape(char c)
{
    return c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20;
}

// A JSON string: quotes, backslashes and control characters escaped. Text with nothing to escape, which is
// nearly all of it, is appended in one piece.
void append_string(std::string& out, std::string_view text)
{
    out.push_back('"');
    if (std::none_of(text.begin(), text.end(), needs_escape)) {
        out.append(text);
        out.push_back('"');
        return;
    }
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
        out += "null"sv;
        return;
    }
    out += R"({"name":)"sv;
    append_string(out, t->name); // from the kernel, which takes any bytes
    out += R"(,"tid":)"sv;
    append_int(out, t->tid);
    out += '}';
}

// Text the server wrote itself, or checked (a client's request id: [A-Za-z0-9._:-]): nothing in it needs
// escaping, so it goes between the quotes as it is.
std::string_view own_text(std::string_view text)
{
    assert(std::none_of(text.begin(), text.end(), needs_escape));
    return text;
}

} // namespace

std::string json_text(const nlohmann::ordered_json& j)
{
    return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

result_fields::result_fields(result_field a, result_field b, result_field c, result_field d, result_field e)
    : fields_{a, b, c, d, e}
{
    static_assert(capacity == 5, "one constructor parameter per place");
    const auto none = [](const result_field& f) { return f.name.empty(); };
    const auto end = std::find_if(fields_.begin(), fields_.end(), none);
    assert(std::all_of(end, fields_.end(), none)); // fields fill the first places, without gaps
    size_ = static_cast<std::size_t>(end - fields_.begin());
}

nlohmann::ordered_json result_fields::to_json() const
{
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    for (const auto& field : items()) {
        std::visit([&](auto v) { j[std::string{field.name}] = v; }, field.value);
    }
    return j;
}

// Written out directly rather than built as a JSON document and then dumped: the report is on every /io and
// /cpu response, and a DOM cost more than the rest of an /io request's handling. Only a split's parts, a
// document already, are dumped.
std::string report_body(const report_context& ctx, const handler_output& out)
{
    const auto& w = out.work;
    std::string body;
    body.reserve(640);
    body += R"({"result":{)"sv;
    for (const auto& field : out.result.items()) {
        if (&field != out.result.items().data()) {
            body.push_back(',');
        }
        body.push_back('"');
        body += own_text(field.name);
        body += R"(":)"sv;
        std::visit([&body](auto v) { append_int(body, v); }, field.value);
    }
    body += R"(},"report":{"id":")"sv;
    body += own_text(ctx.id);
    body += R"(","endpoint":")"sv;
    body += own_text(ctx.endpoint);
    body += R"(","params":)"sv;
    if (ctx.params != nullptr) {
        ctx.params->append_json(body);
    } else {
        body += "{}"sv;
    }
    body += R"(,"model":")"sv;
    body += own_text(w.model);
    body += R"(","timing_us":{"total":)"sv;
    append_micros(body, ctx.total);
    body += R"(,"queue":)"sv;
    append_micros(body, w.queue);
    body += R"(,"service":)"sv;
    append_micros(body, w.service);
    body += R"(},"threads":{"io":)"sv;
    append_thread(body, ctx.io_thread);
    body += R"(,"worker":)"sv;
    append_thread(body, w.worker);
    body += R"(},"cores":{"start":)"sv;
    append_int(body, w.core_start);
    body += R"(,"end":)"sv;
    append_int(body, w.core_end);
    body += R"(},"cpu_time_us":)"sv;
    append_micros(body, w.cpu);
    if (w.voluntary_switches >= 0) {
        body += R"(,"context_switches":{"voluntary":)"sv;
        append_int(body, w.voluntary_switches);
        body += R"(,"involuntary":)"sv;
        append_int(body, w.involuntary_switches);
        body += '}';
    }
    if (!out.split.is_null()) {
        body += R"(,"split":)"sv;
        body += json_text(out.split);
    }
    body += "}}"sv;
    return body;
}

void append_server_timing(std::string& out, const timing& t)
{
    // Milliseconds with three decimals, from whole microseconds: integer formatting, no floating point.
    auto append_ms = [&out](std::chrono::nanoseconds d) {
        append_thousandths(out, (std::max<std::int64_t>(d.count(), 0) + 500) / 1000);
    };
    out += "queue;dur="sv;
    append_ms(t.queue);
    out += ", service;dur="sv;
    append_ms(t.service);
    out += ", total;dur="sv;
    append_ms(t.total);
}

std::string server_timing(const timing& t)
{
    std::string out;
    append_server_timing(out, t);
    return out;
}

} // namespace duet::server
