// The trace ring's copy-out, and the Trace Event Format encoder: a request's slices on the I/O lane, its
// waits as async events, its jobs on the worker lanes with flows between them, and the probe's counters.
#include <duet/server/text.hpp>
#include <duet/server/trace.hpp>

#include <algorithm>
#include <map>

namespace duet::server {

using namespace std::literals;

namespace {

trace_clock::time_point end_of(const trace_entry& e)
{
    if (const auto* r = std::get_if<trace_request>(&e)) {
        return r->sent;
    }
    if (const auto* j = std::get_if<trace_job>(&e)) {
        return j->finished;
    }
    if (const auto* c = std::get_if<trace_counters>(&e)) {
        return c->at;
    }
    return trace_clock::time_point::min();
}

std::int64_t ns(trace_clock::time_point t)
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// A JSON string. Bytes outside ASCII (a client's query may hold any) are written as \u00XX, so that the
// document is valid JSON whatever they were.
void append_string(std::string& out, std::string_view text)
{
    static constexpr std::string_view hex = "0123456789abcdef";
    out.push_back('"');
    for (char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out.push_back('\\');
            out.push_back(c);
        } else if (u < 0x20 || u >= 0x7f) {
            out += "\\u00"sv;
            out.push_back(hex[u >> 4U]);
            out.push_back(hex[u & 0xfU]);
        } else {
            out.push_back(c);
        }
    }
    out.push_back('"');
}

// Microseconds with nanosecond decimals, as the format's ts and dur are.
void append_us(std::string& out, std::int64_t nanos)
{
    append_thousandths(out, nanos);
}

// The fields every event of a thread starts with.
void open_event(std::string& out, std::string_view ph, std::int64_t pid, std::int64_t tid, std::int64_t at)
{
    out += R"({"ph":")"sv;
    out += ph;
    out += R"(","pid":)"sv;
    append_int(out, pid);
    out += R"(,"tid":)"sv;
    append_int(out, tid);
    out += R"(,"ts":)"sv;
    append_us(out, at);
}

// One slice of work on a lane.
struct slice
{
    std::int64_t start = 0;
    std::int64_t end = 0;
    std::int64_t tid = 0;
    const trace_request* request = nullptr; ///< null for a job whose request is not in the window
    const trace_job* job = nullptr;         ///< set for a job's slice
    std::string_view phase;                 ///< what part of the request it is
    std::string_view name;
    bool first = false; ///< the request's first slice (where its flows start)
    bool last = false;  ///< its last (where they end)
};

} // namespace

trace_recorder::trace_recorder(std::size_t capacity, bool enabled)
    : ring_(enabled ? std::max<std::size_t>(capacity, 1) : 1), enabled_{enabled}
{}

std::vector<trace_entry> trace_recorder::since(trace_clock::time_point since) const
{
    std::vector<trace_entry> out;
    out.reserve(wrapped_ ? ring_.size() : next_);
    auto take = [&](std::size_t from, std::size_t to) {
        for (std::size_t i = from; i < to; ++i) {
            const auto& e = ring_[i].entry;
            if (e.index() != 0 && end_of(e) >= since) {
                out.push_back(e);
            }
        }
    };
    if (wrapped_) {
        take(next_, ring_.size());
    }
    take(0, next_);
    return out;
}

trace_clock::time_point trace_recorder::oldest() const noexcept
{
    const auto& first = wrapped_ ? ring_[next_].entry : ring_[0].entry;
    return first.index() == 0 ? trace_clock::time_point::max() : end_of(first);
}

std::string trace_json(std::span<const trace_entry> entries, const trace_names& names,
                       trace_clock::time_point from, trace_clock::time_point to,
                       trace_clock::time_point oldest)
{
    const auto lo = ns(from);
    const auto hi = ns(to);
    const auto pid = names.pid;
    auto lane_tid = [&](std::uint16_t lane) {
        return lane == 0 || lane > names.workers.size() ? names.io.tid : names.workers[lane - 1U].tid;
    };
    auto endpoint = [&](std::uint16_t index) -> std::string_view {
        return index < names.endpoints.size() ? std::string_view{names.endpoints[index]} : "other"sv;
    };

    // A request's jobs, to tie its slices together.
    std::map<std::uint64_t, std::vector<const trace_job*>> jobs;
    std::map<std::uint64_t, const trace_request*> requests;
    for (const auto& e : entries) {
        if (const auto* j = std::get_if<trace_job>(&e)) {
            if (j->finished >= from && j->started <= to) {
                jobs[j->seq].push_back(j);
            }
        } else if (const auto* r = std::get_if<trace_request>(&e)) {
            if (r->sent >= from && r->began <= to) {
                requests[r->seq] = r;
            }
        }
    }

    const std::vector<const trace_job*> no_jobs;
    std::vector<slice> io;
    std::vector<slice> workers;
    for (const auto& [seq, r] : requests) {
        const auto name = endpoint(r->endpoint);
        if (r->dispatched == trace_clock::time_point{}) {
            io.push_back({ns(r->began), ns(r->sent), names.io.tid, r, nullptr, "answer", name});
            continue;
        }
        io.push_back(
            {ns(r->began), ns(r->dispatched), names.io.tid, r, nullptr, "read, parse, route", name, true});
        if (r->resumed != trace_clock::time_point{}) {
            io.push_back(
                {ns(r->resumed), ns(r->sent), names.io.tid, r, nullptr, "report, write", name, false, true});
        }
    }
    for (const auto& [seq, list] : jobs) {
        const auto found = requests.find(seq);
        const auto* r = found == requests.end() ? nullptr : found->second;
        for (const auto* j : list) {
            if (j->what == trace_job::kind::call) {
                continue; // a wait, drawn with the request's wait below
            }
            auto& lane = j->lane == 0 ? io : workers;
            const auto phase = j->what == trace_job::kind::ring_copy ? "copy the timeline"sv
                               : j->lane == 0                        ? "inline job: the loop is blocked"sv
                               : j->lane > names.blocking_from ? "blocking thread: waits in the kernel"sv
                                                               : "job"sv;
            lane.push_back({ns(j->started), ns(j->finished), lane_tid(j->lane), r, j, phase,
                            r != nullptr ? endpoint(r->endpoint) : "job"sv});
        }
    }
    // One thread does one thing at a time: a slice that ran past the next one's start (a write that waited
    // for the socket, so others ran meanwhile) is drawn up to it.
    std::sort(io.begin(), io.end(), [](const slice& a, const slice& b) { return a.start < b.start; });
    for (std::size_t i = 0; i + 1 < io.size(); ++i) {
        io[i].end = std::max(io[i].start, std::min(io[i].end, io[i + 1].start));
    }

    // Where each request's first and last slices ended up: its flows bind to them.
    std::map<std::uint64_t, std::pair<const slice*, const slice*>> ends;
    for (const auto& s : io) {
        if (s.request != nullptr && s.job == nullptr && (s.first || s.last)) {
            auto& e = ends[s.request->seq];
            (s.first ? e.first : e.second) = &s;
        }
    }

    std::string out;
    out.reserve(256 + entries.size() * 320);
    out += R"({"displayTimeUnit":"ms","otherData":{"clock":"monotonic","from_us":)"sv;
    append_us(out, lo);
    out += R"(,"to_us":)"sv;
    append_us(out, hi);
    if (oldest != trace_clock::time_point::min() && oldest != trace_clock::time_point::max()) {
        out += R"(,"oldest_us":)"sv; // the ring reaches back to here; a window from before it is cut
        append_us(out, ns(oldest));
    }
    out += R"(},"traceEvents":[)"sv;
    bool first = true;
    auto next = [&] {
        if (!first) {
            out.push_back(',');
        }
        first = false;
    };

    // Metadata: the process, and its threads with the I/O thread first.
    next();
    out += R"({"ph":"M","pid":)"sv;
    append_int(out, pid);
    out += R"(,"name":"process_name","args":{"name":"duet-server"}})"sv;
    auto name_thread = [&](const thread_ident& t, std::size_t order) {
        next();
        out += R"({"ph":"M","pid":)"sv;
        append_int(out, pid);
        out += R"(,"tid":)"sv;
        append_int(out, t.tid);
        out += R"(,"name":"thread_name","args":{"name":)"sv;
        append_string(out, t.name);
        out += R"(}},{"ph":"M","pid":)"sv;
        append_int(out, pid);
        out += R"(,"tid":)"sv;
        append_int(out, t.tid);
        out += R"(,"name":"thread_sort_index","args":{"sort_index":)"sv;
        append_int(out, order);
        out += "}}"sv;
    };
    name_thread(names.io, 0);
    // The blocking threads (64 by default) are named only when a job of the window ran on one: lanes that
    // stay empty would crowd out the rest.
    std::vector<bool> used(names.workers.size() + 1, false);
    for (const auto& s : workers) {
        if (s.job != nullptr && s.job->lane < used.size()) {
            used[s.job->lane] = true;
        }
    }
    for (std::size_t i = 0; i < names.workers.size(); ++i) {
        if (i < names.blocking_from || used[i + 1]) {
            name_thread(names.workers[i], i + 1);
        }
    }

    // Slices: complete events, with the request's id and parameters.
    auto emit_slice = [&](const slice& s) {
        next();
        open_event(out, "X", pid, s.tid, s.start);
        out += R"(,"dur":)"sv;
        append_us(out, s.end - s.start);
        out += R"(,"cat":)"sv;
        out += s.job == nullptr                            ? R"("request")"sv
               : s.job->what == trace_job::kind::ring_copy ? R"("copy")"sv
               : s.job->lane == 0                          ? R"("inline")"sv
                                                           : R"("job")"sv;
        out += R"(,"name":)"sv;
        append_string(out, s.name);
        out += R"(,"args":{"phase":)"sv;
        append_string(out, s.phase);
        if (s.request != nullptr) {
            out += R"(,"id":)"sv;
            std::string id{s.request->id.data(), s.request->id_size};
            if (s.request->id_cut) {
                id += "..."sv;
            }
            append_string(out, id);
            out += R"(,"query":)"sv;
            std::string query{s.request->query.data(), s.request->query_size};
            if (s.request->query_cut) {
                query += "..."sv;
            }
            append_string(out, query);
            out += R"(,"status":)"sv;
            append_int(out, s.request->status);
        }
        if (s.job != nullptr) {
            out += R"(,"part":)"sv;
            append_int(out, s.job->part);
            out += R"(,"queued_us":)"sv;
            append_us(out, ns(s.job->started) - ns(s.job->enqueued));
        }
        out += "}}"sv;
    };
    for (const auto& s : io) {
        emit_slice(s);
    }
    for (const auto& s : workers) {
        emit_slice(s);
    }

    // Waits: async events on the process, one id per request, so that overlapping waits are drawn side by
    // side. A job's time in the pool's queue nests inside its request's wait.
    // A request's wait has its number as id; each of its jobs' time in the queue the number and the part, so
    // that the parts' spans, which overlap without nesting, are paired each with its own.
    auto async_event = [&](std::string_view ph, std::int64_t at, std::uint64_t id, int part,
                           std::string_view cat, std::string_view name) {
        next();
        open_event(out, ph, pid, names.io.tid, at);
        out += R"(,"cat":)"sv;
        append_string(out, cat);
        out += R"(,"id":")"sv;
        append_int(out, id);
        if (part >= 0) {
            out.push_back('.');
            append_int(out, part);
        }
        out += R"(","name":)"sv;
        append_string(out, name);
    };
    for (const auto& [seq, r] : requests) {
        if (r->dispatched == trace_clock::time_point{}) {
            continue;
        }
        const auto found = jobs.find(seq);
        const auto& list = found != jobs.end() ? found->second : no_jobs;
        const bool on_workers =
            std::any_of(list.begin(), list.end(), [](const trace_job* j) { return j->lane != 0; });
        const bool ran_inline = std::any_of(list.begin(), list.end(), [](const trace_job* j) {
            return j->lane == 0 && j->what == trace_job::kind::job;
        });
        if (ran_inline) {
            continue; // it never waited: it ran on the I/O thread, blocking it
        }
        const auto end = r->resumed != trace_clock::time_point{} ? r->resumed : r->sent;
        const bool calls = std::any_of(list.begin(), list.end(),
                                       [](const trace_job* j) { return j->what == trace_job::kind::call; });
        const bool blocking = std::any_of(list.begin(), list.end(),
                                          [&](const trace_job* j) { return j->lane > names.blocking_from; });
        const auto on = calls        ? "network"sv
                        : blocking   ? "blocking threads"sv
                        : on_workers ? "workers"sv
                                     : "timer"sv;
        async_event("b", ns(r->dispatched), seq, -1, "wait", endpoint(r->endpoint));
        out += R"(,"args":{"on":)"sv;
        append_string(out, on);
        out += R"(,"id":)"sv;
        append_string(out, {r->id.data(), r->id_size});
        out += "}}"sv;
        for (const auto* j : list) {
            if (j->what == trace_job::kind::call) {
                // Each call of /io/call waits on its own: K calls at once are K overlapping waits.
                async_event("b", ns(j->started), seq, j->part, "call", "upstream call");
                out += "}"sv;
                async_event("e", ns(j->finished), seq, j->part, "call", "upstream call");
                out += "}"sv;
                continue;
            }
            if (j->lane == 0) {
                continue;
            }
            const auto queued =
                j->lane > names.blocking_from ? "queued for a blocking thread"sv : "queued for a worker"sv;
            async_event("b", ns(j->enqueued), seq, j->part, "queue", queued);
            out += "}"sv;
            async_event("e", ns(j->started), seq, j->part, "queue", queued);
            out += "}"sv;
        }
        async_event("e", ns(end), seq, -1, "wait", endpoint(r->endpoint));
        out += "}"sv;
    }

    // Flows: from the request's first slice to each of its jobs on a worker, and from the job to its last
    // slice.
    std::uint64_t flow = 0;
    for (const auto& [seq, list] : jobs) {
        const auto found = ends.find(seq);
        if (found == ends.end() || found->second.first == nullptr) {
            continue;
        }
        const auto [first_slice, last_slice] = found->second;
        for (const auto* j : list) {
            if (j->lane == 0) {
                continue;
            }
            ++flow;
            auto flow_event = [&](std::string_view ph, std::int64_t tid, std::int64_t at) {
                next();
                open_event(out, ph, pid, tid, at);
                out += R"(,"cat":"flow","name":"job","id":)"sv;
                append_int(out, flow);
                if (ph == "f"sv) {
                    out += R"(,"bp":"e")"sv;
                }
                out += "}"sv;
            };
            // Each at a moment inside the slice it binds to, as drawn (after clipping).
            flow_event("s", names.io.tid, (first_slice->start + first_slice->end) / 2);
            flow_event("t", lane_tid(j->lane), (ns(j->started) + ns(j->finished)) / 2);
            if (last_slice != nullptr) {
                flow_event("f", names.io.tid, (last_slice->start + last_slice->end) / 2);
            }
        }
    }

    // Counters, as the probe sampled them.
    for (const auto& e : entries) {
        const auto* c = std::get_if<trace_counters>(&e);
        if (c == nullptr || c->at < from || c->at > to) {
            continue;
        }
        const std::pair<std::string_view, std::uint32_t> series[] = {{"requests in flight", c->in_flight},
                                                                     {"jobs queued", c->queued},
                                                                     {"workers busy", c->busy},
                                                                     {"event-loop lag (us)", c->lag_us}};
        for (const auto& [name, value] : series) {
            next();
            out += R"({"ph":"C","pid":)"sv;
            append_int(out, pid);
            out += R"(,"ts":)"sv;
            append_us(out, ns(c->at));
            out += R"(,"name":)"sv;
            append_string(out, name);
            out += R"(,"args":{"value":)"sv;
            append_int(out, value);
            out += "}}"sv;
        }
    }
    out += "]}"sv;
    return out;
}

} // namespace duet::server
