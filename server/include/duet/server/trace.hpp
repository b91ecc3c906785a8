#pragma once
// The timeline of the server's own requests: what the I/O thread records of each (its slices of work, its
// waits, its jobs on the workers) in a fixed ring, and the Trace Event Format document that /trace builds
// from it.

#include <duet/thread_info.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace duet::server {

using trace_clock = std::chrono::steady_clock;

/// A request as its session saw it, written once when it ends. A plain answer (/healthz, a refusal) was one
/// piece of work: `dispatched` is unset. A request with a handler that waited has two: read, parse and route
/// up to `dispatched`; the result's report and the write from `resumed`.
struct trace_request
{
    std::uint64_t seq = 0;
    std::uint16_t endpoint = 0; ///< index in the router's table; the last index is "other"
    std::uint16_t status = 0;   ///< as sent; 499 when the client left first
    std::uint8_t id_size = 0;
    std::uint8_t query_size = 0;
    bool id_cut = false;                  ///< the id was longer than its field (a client's own, over 40)
    bool query_cut = false;               ///< the query was longer than its field
    trace_clock::time_point began{};      ///< its bytes began to be parsed
    trace_clock::time_point dispatched{}; ///< its handler began (unset: a plain answer)
    trace_clock::time_point resumed{};    ///< its handler's result was back on the I/O thread (unset: never)
    trace_clock::time_point sent{};       ///< its response was written (or it was given up)
    std::array<char, 40> id{};    ///< X-Request-Id, cut to fit: ours are 10 to 17 characters, a UUID 36
    std::array<char, 32> query{}; ///< the target's query (its parameters), cut to fit
};

/// A piece of a request's work besides its own slices: a CPU job on a worker (lane i + 1 for worker i; the
/// blocking threads' lanes follow the workers') or
/// inline on the I/O thread (lane 0), or other work its handler did on the I/O thread (copying the timeline).
struct trace_job
{
    enum class kind : std::uint8_t {
        job,       ///< a CPU job (one part of a split request)
        ring_copy, ///< /trace copying the ring, on the I/O thread
        call,      ///< an /io/call call on the event loop (lane 0): a wait on the network, not work
    };
    std::uint64_t seq = 0;
    std::uint16_t lane = 0;
    std::uint16_t part = 0; ///< its place among a split request's parts (0 for a single job)
    kind what = kind::job;
    trace_clock::time_point enqueued{};
    trace_clock::time_point started{};
    trace_clock::time_point finished{};
};

/// What the event-loop probe saw, every probe interval.
struct trace_counters
{
    trace_clock::time_point at{};
    std::uint32_t in_flight = 0; ///< requests read and not yet answered
    std::uint32_t queued = 0;    ///< jobs waiting for a worker
    std::uint32_t busy = 0;      ///< workers running a job
    std::uint32_t lag_us = 0;    ///< how late the probe fired
};

using trace_entry = std::variant<std::monostate, trace_request, trace_job, trace_counters>;
static_assert(sizeof(trace_entry) == 128, "two cache lines: what recording writes per request");

/// The ring the I/O thread records into: a fixed number of entries, the oldest overwritten. Recording copies
/// one entry into place and allocates nothing; when off, it does nothing. I/O thread only.
class trace_recorder
{
public:
    trace_recorder(std::size_t capacity, bool enabled);

    bool enabled() const noexcept { return enabled_; }

    /// A number for the next request, so that its jobs can be told to it; 0 when recording is off.
    std::uint64_t next_seq() noexcept { return enabled_ ? ++seq_ : 0; }

    void record(const trace_entry& e) noexcept
    {
        if (enabled_) {
            next_slot() = e;
        }
    }

    /// The next slot, made a request for the caller to fill in place: one write of the record, not a copy
    /// (the cheapest requests are recorded this way). Recording must be on.
    trace_request& next_request() noexcept { return next_slot().emplace<trace_request>(); }

    /// Copies the entries that end at or after `since`, oldest first: the encoding runs elsewhere.
    std::vector<trace_entry> since(trace_clock::time_point since) const;

    /// When the oldest entry the ring still holds ended (max when it holds none): a window that reaches
    /// further back than this is cut.
    trace_clock::time_point oldest() const noexcept;

    std::size_t capacity() const noexcept { return ring_.size(); }

private:
    trace_entry& next_slot() noexcept
    {
        auto& e = ring_[next_].entry;
        next_ = next_ + 1 == ring_.size() ? 0 : next_ + 1;
        wrapped_ = wrapped_ || next_ == 0;
        return e;
    }

    // Each record on two cache lines of its own, so that writing one touches no other.
    struct alignas(64) slot
    {
        trace_entry entry;
    };
    std::vector<slot> ring_;
    std::size_t next_ = 0;
    bool wrapped_ = false;
    bool enabled_;
    std::uint64_t seq_ = 0;
};

/// What the encoder names: the process, its threads (the I/O thread first), and the endpoints by index.
struct trace_names
{
    std::int64_t pid = 0;
    thread_ident io{};
    std::vector<thread_ident> workers{};  ///< lane i + 1: the CPU workers, then the blocking threads
    std::size_t blocking_from = SIZE_MAX; ///< where the blocking threads begin in workers
    std::vector<std::string> endpoints{}; ///< by index; the last one is "other"
};

/// The entries as a Trace Event Format document ({"traceEvents": [...]}, as Perfetto, chrome://tracing and
/// Chromium's performance panel read it), within [from, to]: metadata naming the process and its threads;
/// complete events ("X") for the slices of work, on the lane that did them; async events ("b"/"e") for the
/// time a request waited, so that overlapping waits show as overlap; flow events ("s", "t", "f") from a
/// request's first slice to its job on a worker and back; counter events ("C"). Times in microseconds of the
/// monotonic clock. Slices on one lane never overlap partially: one that ran past the next one's start (a
/// write that waited for the socket) is drawn up to it. `oldest` (the ring's oldest entry) goes into
/// otherData, so that a reader sees when the ring did not reach back to `from`.
std::string trace_json(std::span<const trace_entry> entries, const trace_names& names,
                       trace_clock::time_point from, trace_clock::time_point to,
                       trace_clock::time_point oldest = trace_clock::time_point::min());

/// Copies `text` into a fixed field, cut to fit; returns the size kept.
template <std::size_t N>
std::uint8_t copy_cut(std::array<char, N>& to, std::string_view text) noexcept
{
    static_assert(N < 256);
    const auto n = text.copy(to.data(), N);
    return static_cast<std::uint8_t>(n);
}

} // namespace duet::server
