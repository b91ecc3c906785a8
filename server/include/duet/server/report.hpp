#pragma once
// The report on every /io and /cpu response: what a handler hands back (its result and how the work ran), and
// how that is written as the JSON body and the Server-Timing header.

#include <duet/server/http_types.hpp>
#include <duet/server/params.hpp>
#include <duet/thread_info.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

namespace duet::server {

/// How the work of one request ran, filled in by its handler.
struct work_report
{
    std::string_view
        model{}; ///< "event-loop", "worker-pool", "inline", "split", "blocking-thread", "io_uring"
    std::chrono::nanoseconds queue{};   ///< waiting for a worker (0 on the event loop)
    std::chrono::nanoseconds service{}; ///< running, or waiting on timers
    std::chrono::nanoseconds cpu{};     ///< thread CPU time the work itself consumed
    int core_start = -1;
    int core_end = -1;
    const thread_ident* worker = nullptr; ///< the pool worker, for worker-pool work
    /// For blocking-thread work: how often the thread was switched out while it ran (getrusage), because it
    /// blocked or was preempted; -1 for other models.
    std::int64_t voluntary_switches = -1;
    std::int64_t involuntary_switches = -1;
};

/// A response body that is not JSON (an image), sent instead of {"result", "report"}.
struct binary_body
{
    std::string_view content_type; ///< static text
    std::string data;
};

/// One named integer of a handler's result; the name is static text.
struct result_field
{
    result_field() = default; ///< none: an unused place in result_fields

    template <std::integral T>
    result_field(std::string_view n, T v) : name{n}
    {
        if constexpr (std::is_signed_v<T>) {
            value = static_cast<std::int64_t>(v);
        } else {
            value = static_cast<std::uint64_t>(v);
        }
    }

    std::string_view name; ///< empty only for none
    std::variant<std::int64_t, std::uint64_t> value;
};

/// A handler's result: a flat object of named integers, {"n": 30, "value": 832040}, in order. Every
/// endpoint's result has this shape; a fixed capacity means building one allocates nothing.
class result_fields
{
public:
    static constexpr std::size_t capacity = 5; ///< the most any endpoint reports (/io/call)

    result_fields() = default;
    /// One to `capacity` fields, in order: one parameter per place, so that a sixth does not compile.
    result_fields(result_field a, result_field b = {}, result_field c = {}, result_field d = {},
                  result_field e = {});

    std::span<const result_field> items() const { return {fields_.data(), size_}; }
    /// The same as a JSON document (tests, and anything that is not the hot path).
    nlohmann::ordered_json to_json() const;

private:
    std::array<result_field, capacity> fields_{};
    std::size_t size_ = 0;
};

/// A reporting handler's success: its result and how it ran.
struct handler_output
{
    result_fields result{};
    work_report work{};
    nlohmann::ordered_json split = nullptr; ///< mode=split: parts, speedup, efficiency, every part
    std::optional<binary_body> binary{};    ///< when set, the body; the report's figures stay in the headers
    std::shared_ptr<void> lease{};          ///< held by the response until it is gone (see response::lease)
};

/// Everything the report says about one request besides the handler's output.
struct report_context
{
    std::string_view id;
    std::string_view endpoint;
    const param_values* params = nullptr; ///< echoed as {"name": value, …}
    const thread_ident* io_thread = nullptr;
    std::chrono::nanoseconds total{}; ///< request fully read -> response ready
};

/// JSON as the server sends it: compact, and bytes that are not UTF-8 (a client's parameter name) replaced
/// rather than thrown on.
std::string json_text(const nlohmann::ordered_json& j);

/// The response body {"result": …, "report": {…}}; the schema is in docs/API.md.
std::string report_body(const report_context& ctx, const handler_output& out);

/// The Server-Timing header value: "queue;dur=0.004, service;dur=300.112, total;dur=300.301" (milliseconds,
/// rounded to the microsecond), appended to out.
void append_server_timing(std::string& out, const timing& t);

/// The same, as a string.
std::string server_timing(const timing& t);

} // namespace duet::server
