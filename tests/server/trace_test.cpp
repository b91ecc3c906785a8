// The timeline without a server: the ring keeps the newest records, and the encoder writes valid Trace Event
// Format whose slices on each thread nest or follow each other, whatever the records say.
#include <duet/server/trace.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

namespace {

using duet::server::trace_clock;
using duet::server::trace_counters;
using duet::server::trace_entry;
using duet::server::trace_job;
using duet::server::trace_names;
using duet::server::trace_recorder;
using duet::server::trace_request;
using namespace std::chrono_literals;
using json = nlohmann::json;

const trace_clock::time_point t0 = trace_clock::now();

trace_names names()
{
    return trace_names{.pid = 42,
                       .io = {.name = "duet-io", .tid = 100},
                       .workers = {{.name = "duet-w0", .tid = 101}, {.name = "duet-w1", .tid = 102}},
                       .endpoints = {"/healthz", "/io/sleep", "/cpu/fib", "other"}};
}

trace_request plain(std::uint64_t seq, trace_clock::duration began, trace_clock::duration sent)
{
    return trace_request{.seq = seq, .endpoint = 0, .status = 200, .began = t0 + began, .sent = t0 + sent};
}

trace_request handled(std::uint64_t seq, std::uint16_t endpoint, trace_clock::duration began,
                      trace_clock::duration dispatched, trace_clock::duration resumed,
                      trace_clock::duration sent)
{
    return trace_request{.seq = seq,
                         .endpoint = endpoint,
                         .status = 200,
                         .began = t0 + began,
                         .dispatched = t0 + dispatched,
                         .resumed = t0 + resumed,
                         .sent = t0 + sent};
}

json encode(const std::vector<trace_entry>& entries)
{
    const auto text = duet::server::trace_json(entries, names(), t0 - 1s, t0 + 10s);
    return json::parse(text); // throws (and fails the test) if it is not JSON
}

std::vector<json> of_phase(const json& doc, const std::string& ph)
{
    std::vector<json> out;
    for (const auto& e : doc["traceEvents"]) {
        if (e["ph"] == ph) {
            out.push_back(e);
        }
    }
    return out;
}

TEST(TraceRecorder, KeepsTheNewestRecordsInOrder)
{
    trace_recorder ring{4, true};
    for (std::uint64_t i = 1; i <= 6; ++i) {
        ring.record(plain(i, std::chrono::milliseconds(i), std::chrono::milliseconds(i)));
    }
    const auto kept = ring.since(t0);
    ASSERT_EQ(kept.size(), 4U);
    for (std::size_t i = 0; i < kept.size(); ++i) {
        EXPECT_EQ(std::get<trace_request>(kept[i]).seq, i + 3) << "the oldest two were overwritten";
    }
    EXPECT_EQ(ring.since(t0 + 5ms).size(), 2U) << "only what ends in the window";
}

TEST(TraceRecorder, OffRecordsNothingAndNumbersNothing)
{
    trace_recorder ring{4, false};
    EXPECT_EQ(ring.next_seq(), 0U);
    ring.record(plain(1, 0ms, 1ms));
    EXPECT_TRUE(ring.since(t0 - 1s).empty());
}

TEST(TraceJson, EveryEventHasTheFieldsItsPhaseNeeds)
{
    const std::vector<trace_entry> entries = {
        plain(1, 0ms, 1ms),
        handled(2, 1, 2ms, 3ms, 103ms, 104ms), // a wait
        handled(3, 2, 4ms, 5ms, 60ms, 61ms),   // a pool job
        trace_job{.seq = 3, .lane = 2, .enqueued = t0 + 5ms, .started = t0 + 6ms, .finished = t0 + 59ms},
        trace_counters{.at = t0 + 10ms, .in_flight = 2, .queued = 0, .busy = 1, .lag_us = 30},
    };
    const auto doc = encode(entries);
    ASSERT_TRUE(doc["traceEvents"].is_array());
    std::map<std::string, int> phases;
    for (const auto& e : doc["traceEvents"]) {
        const std::string ph = e.at("ph");
        ++phases[ph];
        EXPECT_EQ(e.at("pid"), 42);
        if (ph == "M") {
            EXPECT_TRUE(e.at("name").is_string());
            EXPECT_TRUE(e.at("args").is_object());
            continue;
        }
        EXPECT_TRUE(e.at("ts").is_number()) << e;
        EXPECT_TRUE(e.at("name").is_string()) << e;
        if (ph == "X") {
            EXPECT_GE(e.at("dur").get<double>(), 0.0) << e;
            EXPECT_TRUE(e.at("tid").is_number()) << e;
        } else if (ph == "b" || ph == "e") {
            EXPECT_TRUE(e.at("id").is_string()) << e;
            EXPECT_TRUE(e.at("cat").is_string()) << e;
        } else if (ph == "s" || ph == "t" || ph == "f") {
            EXPECT_TRUE(e.at("id").is_number()) << e;
            EXPECT_TRUE(e.at("tid").is_number()) << e;
        } else if (ph == "C") {
            EXPECT_TRUE(e.at("args").at("value").is_number()) << e;
        } else {
            ADD_FAILURE() << "unexpected phase " << ph;
        }
    }
    EXPECT_EQ(phases["X"], 6) << "plain 1, the wait's 2, the job's request 2, the job 1";
    EXPECT_EQ(phases["b"], 3) << "two waits, and the job's time in the queue";
    EXPECT_EQ(phases["e"], 3);
    EXPECT_EQ(phases["s"], 1);
    EXPECT_EQ(phases["t"], 1);
    EXPECT_EQ(phases["f"], 1);
    EXPECT_EQ(phases["C"], 4) << "four series from one sample";
}

TEST(TraceJson, ThreadsAreNamedAndTheIoThreadComesFirst)
{
    const auto doc = encode({});
    std::map<int, std::string> name;
    std::map<int, int> order;
    for (const auto& e : of_phase(doc, "M")) {
        if (e["name"] == "thread_name") {
            name[e["tid"]] = e["args"]["name"];
        } else if (e["name"] == "thread_sort_index") {
            order[e["tid"]] = e["args"]["sort_index"];
        }
    }
    EXPECT_EQ(name[100], "duet-io");
    EXPECT_EQ(name[101], "duet-w0");
    EXPECT_EQ(name[102], "duet-w1");
    EXPECT_LT(order[100], order[101]);
    EXPECT_LT(order[101], order[102]);
}

TEST(TraceJson, AJobRunsOnItsWorkersLaneTiedToItsRequestByFlows)
{
    const auto doc = encode({
        handled(3, 2, 4ms, 5ms, 60ms, 61ms),
        trace_job{.seq = 3, .lane = 1, .enqueued = t0 + 5ms, .started = t0 + 6ms, .finished = t0 + 59ms},
    });
    const auto slices = of_phase(doc, "X");
    const auto job =
        std::find_if(slices.begin(), slices.end(), [](const json& e) { return e["cat"] == "job"; });
    ASSERT_NE(job, slices.end());
    EXPECT_EQ((*job)["tid"], 101) << "worker 0 is lane 1";
    EXPECT_EQ((*job)["name"], "/cpu/fib");
    // Each flow event lies inside a slice of its thread, which it binds to.
    for (const auto& ph : {"s", "t", "f"}) {
        const auto flows = of_phase(doc, ph);
        ASSERT_EQ(flows.size(), 1U) << ph;
        const auto& f = flows[0];
        const bool inside = std::any_of(slices.begin(), slices.end(), [&](const json& s) {
            return s["tid"] == f["tid"] && s["ts"].get<double>() <= f["ts"].get<double>() &&
                   f["ts"].get<double>() <= s["ts"].get<double>() + s["dur"].get<double>();
        });
        EXPECT_TRUE(inside) << ph << ": " << f;
    }
}

TEST(TraceJson, AnInlineJobIsASliceOnTheIoLaneAndNoWait)
{
    const auto doc = encode({
        handled(4, 2, 0ms, 1ms, 300ms, 301ms),
        trace_job{.seq = 4, .lane = 0, .enqueued = t0 + 1ms, .started = t0 + 1ms, .finished = t0 + 299ms},
    });
    const auto slices = of_phase(doc, "X");
    ASSERT_EQ(slices.size(), 3U);
    for (const auto& s : slices) {
        EXPECT_EQ(s["tid"], 100);
    }
    EXPECT_TRUE(of_phase(doc, "b").empty()) << "it never waited: it blocked the loop";
}

// Slices on one thread either nest or follow each other; the encoder guarantees it even for records that
// overlap (a write that waited for the socket while other requests ran).
TEST(TraceJson, SlicesOnOneThreadNeverOverlapPartially)
{
    const auto doc = encode({
        plain(1, 0ms, 10ms), // its write waited until 10 ms
        plain(2, 2ms, 3ms), plain(3, 5ms, 6ms),
        handled(4, 1, 7ms, 12ms, 20ms, 21ms), // begins inside the first, ends after it
    });
    std::map<int, std::vector<std::pair<double, double>>> by_thread;
    for (const auto& s : of_phase(doc, "X")) {
        const auto start = s["ts"].get<double>();
        by_thread[s["tid"]].emplace_back(start, start + s["dur"].get<double>());
    }
    for (auto& [tid, spans] : by_thread) {
        for (std::size_t i = 0; i < spans.size(); ++i) {
            for (std::size_t k = 0; k < spans.size(); ++k) {
                const auto [a0, a1] = spans[i];
                const auto [b0, b1] = spans[k];
                const bool apart = a1 <= b0 || b1 <= a0;
                const bool nested = (a0 <= b0 && b1 <= a1) || (b0 <= a0 && a1 <= b1);
                EXPECT_TRUE(apart || nested)
                    << tid << ": [" << a0 << ", " << a1 << "] and [" << b0 << ", " << b1 << "]";
            }
        }
    }
}

// Pairs b and e as Perfetto does: by cat and id, the newest open one first.
std::map<std::string, std::pair<double, double>> async_spans(const json& doc, const std::string& cat)
{
    std::map<std::string, std::vector<double>> open;
    std::map<std::string, std::pair<double, double>> spans;
    for (const auto& e : doc["traceEvents"]) {
        if (e["ph"] != "b" && e["ph"] != "e") {
            continue;
        }
        if (e["cat"] != cat) {
            continue;
        }
        const std::string id = e["id"];
        if (e["ph"] == "b") {
            open[id].push_back(e["ts"].get<double>());
        } else {
            EXPECT_FALSE(open[id].empty()) << "an end without a begin: " << e;
            if (!open[id].empty()) {
                spans[id + "#" + std::to_string(spans.size())] = {open[id].back(), e["ts"].get<double>()};
                open[id].pop_back();
            }
        }
    }
    for (const auto& [id, begins] : open) {
        EXPECT_TRUE(begins.empty()) << "a begin without an end: " << id;
    }
    return spans;
}

// A split request's parts wait in the queue first in, first out: their spans overlap without nesting, so each
// must be paired with its own end, which a distinct id per part does.
TEST(TraceJson, EachPartsTimeInTheQueueIsItsOwnSpan)
{
    std::vector<trace_entry> entries = {handled(5, 2, 0ms, 1ms, 100ms, 101ms)};
    const std::vector<std::pair<int, int>> queued_started = {{2, 3}, {3, 4}, {4, 40}, {5, 70}}; // ms
    for (std::uint16_t part = 0; part < queued_started.size(); ++part) {
        const auto [q, st] = queued_started[part];
        entries.push_back(trace_job{.seq = 5,
                                    .lane = static_cast<std::uint16_t>(1 + part % 2),
                                    .part = part,
                                    .enqueued = t0 + std::chrono::milliseconds(q),
                                    .started = t0 + std::chrono::milliseconds(st),
                                    .finished = t0 + std::chrono::milliseconds(st + 20)});
    }
    const auto doc = encode(entries);
    const auto queued = async_spans(doc, "queue");
    ASSERT_EQ(queued.size(), 4U);
    std::vector<double> waited;
    for (const auto& [id, span] : queued) {
        waited.push_back(span.second - span.first);
    }
    std::sort(waited.begin(), waited.end());
    EXPECT_DOUBLE_EQ(waited[0], 1000.0);
    EXPECT_DOUBLE_EQ(waited[1], 1000.0);
    EXPECT_DOUBLE_EQ(waited[2], 36000.0);
    EXPECT_DOUBLE_EQ(waited[3], 65000.0);
    // Each job's slice says the same.
    for (const auto& e : of_phase(doc, "X")) {
        if (e["cat"] == "job") {
            const auto part = e["args"]["part"].get<std::size_t>();
            const auto [q, st] = queued_started[part];
            EXPECT_DOUBLE_EQ(e["args"]["queued_us"].get<double>(), (st - q) * 1000.0) << e;
        }
    }
    EXPECT_EQ(async_spans(doc, "wait").size(), 1U) << "and the request's wait is one span";
}

// A slice drawn up to the next one's start (its write waited for the socket) keeps its flow's end inside it.
TEST(TraceJson, AFlowEndsInsideItsRequestsSliceAsDrawn)
{
    const auto doc = encode({
        handled(1, 2, 0ms, 1ms, 10ms, 30ms), // the last slice, from 10 ms, ran past the next one's start
        trace_job{.seq = 1, .lane = 1, .enqueued = t0 + 1ms, .started = t0 + 2ms, .finished = t0 + 9ms},
        plain(2, 15ms, 16ms),
        plain(3, 20ms, 21ms),
    });
    const auto f = of_phase(doc, "f");
    ASSERT_EQ(f.size(), 1U);
    const auto at = f[0]["ts"].get<double>();
    bool in_its_own = false;
    for (const auto& s : of_phase(doc, "X")) {
        const auto start = s["ts"].get<double>();
        const bool inside = start <= at && at <= start + s["dur"].get<double>() && s["tid"] == 100;
        if (inside) {
            EXPECT_EQ(s["args"]["phase"], "report, write") << "bound to " << s;
            in_its_own = s["args"]["phase"] == "report, write";
        }
    }
    EXPECT_TRUE(in_its_own);
}

TEST(TraceJson, TheRingCopyIsWorkOnTheIoLaneAndTheWaitIsOnWorkers)
{
    const auto doc = encode({
        handled(7, 2, 0ms, 1ms, 20ms, 21ms),
        trace_job{.seq = 7,
                  .what = trace_job::kind::ring_copy,
                  .enqueued = t0 + 1ms,
                  .started = t0 + 1ms,
                  .finished = t0 + 2ms},
        trace_job{.seq = 7, .lane = 2, .enqueued = t0 + 2ms, .started = t0 + 3ms, .finished = t0 + 19ms},
    });
    bool copy = false;
    for (const auto& e : of_phase(doc, "X")) {
        if (e["cat"] == "copy") {
            copy = true;
            EXPECT_EQ(e["tid"], 100);
            EXPECT_EQ(e["args"]["phase"], "copy the timeline");
        }
        EXPECT_NE(e["cat"], "inline") << "copying is not an inline job";
    }
    EXPECT_TRUE(copy);
    const auto b = of_phase(doc, "b");
    const auto wait = std::find_if(b.begin(), b.end(), [](const json& e) { return e["cat"] == "wait"; });
    ASSERT_NE(wait, b.end());
    EXPECT_EQ((*wait)["args"]["on"], "workers");
}

// /io/call's calls on the loop: each is a wait of its own under the request's (K calls, K overlapping waits),
// never a slice of work on the I/O lane.
TEST(TraceJson, EachUpstreamCallIsAWaitOfItsOwn)
{
    std::vector<trace_entry> entries{handled(8, 1, 0ms, 1ms, 40ms, 41ms)};
    for (std::uint16_t i = 0; i < 3; ++i) {
        entries.push_back(trace_job{.seq = 8,
                                    .part = i,
                                    .what = trace_job::kind::call,
                                    .enqueued = t0 + 1ms,
                                    .started = t0 + 1ms,
                                    .finished = t0 + 39ms});
    }
    const auto doc = encode(entries);
    for (const auto& e : of_phase(doc, "X")) {
        EXPECT_NE(e.value("cat", ""), "inline") << e;
        EXPECT_NE(e.value("cat", ""), "job") << e;
    }
    std::map<std::string, int> calls;
    std::string on;
    for (const auto& e : doc["traceEvents"]) {
        if (e.value("cat", "") == "call") {
            calls[e["id"].get<std::string>()] += e["ph"] == "b" ? 1 : 10;
        }
        if (e.value("cat", "") == "wait" && e["ph"] == "b") {
            on = e["args"]["on"];
        }
    }
    EXPECT_EQ(calls, (std::map<std::string, int>{{"8.0", 11}, {"8.1", 11}, {"8.2", 11}}));
    EXPECT_EQ(on, "network");
}

// The blocking threads' lanes follow the workers' and are named only when a job of the window ran on one.
TEST(TraceJson, ABlockingThreadsLaneIsNamedOnlyWhenUsed)
{
    auto n = names();
    n.blocking_from = n.workers.size();
    n.workers.push_back({.name = "duet-b0", .tid = 201});
    n.workers.push_back({.name = "duet-b1", .tid = 202});
    const std::vector<trace_entry> entries{
        handled(9, 1, 0ms, 1ms, 12ms, 13ms),
        trace_job{.seq = 9, .lane = 4, .enqueued = t0 + 1ms, .started = t0 + 2ms, .finished = t0 + 11ms}};
    const auto doc = json::parse(duet::server::trace_json(entries, n, t0 - 1s, t0 + 10s));
    std::vector<std::string> named;
    std::string on;
    for (const auto& e : doc["traceEvents"]) {
        if (e["ph"] == "M" && e["name"] == "thread_name") {
            named.push_back(e["args"]["name"]);
        }
        if (e.value("cat", "") == "wait" && e["ph"] == "b") {
            on = e["args"]["on"];
        }
    }
    EXPECT_EQ(named, (std::vector<std::string>{"duet-io", "duet-w0", "duet-w1", "duet-b1"}));
    EXPECT_EQ(on, "blocking threads");
}

TEST(TraceJson, ACutQueryIsMarkedAndTheRingsReachIsSaid)
{
    auto r = plain(1, 0ms, 1ms);
    const std::string query(100, 'q');
    r.query_size = duet::server::copy_cut(r.query, query);
    r.query_cut = true;
    const std::vector<trace_entry> entries = {r};
    const auto doc = json::parse(
        duet::server::trace_json(entries, names(), t0 - 1s, t0 + 1s, t0 + std::chrono::milliseconds{1}));
    const auto slices = of_phase(doc, "X");
    ASSERT_EQ(slices.size(), 1U);
    const std::string shown = slices[0]["args"]["query"];
    EXPECT_EQ(shown, std::string(r.query.size(), 'q') + "...");
    EXPECT_TRUE(doc["otherData"]["oldest_us"].is_number());
}

TEST(TraceJson, TextFromClientsIsEscaped)
{
    auto r = plain(1, 0ms, 1ms);
    r.query_size = duet::server::copy_cut(r.query, std::string_view{"a=\"b\"&c=\\\n\x01\xff", 13});
    r.id_size = duet::server::copy_cut(r.id, "id\"1");
    const auto doc = encode({r});
    const auto slices = of_phase(doc, "X");
    ASSERT_EQ(slices.size(), 1U);
    EXPECT_EQ(slices[0]["args"]["id"], "id\"1");
    const std::string query = slices[0]["args"]["query"];
    EXPECT_EQ(query.substr(0, 11), "a=\"b\"&c=\\\n\x01");
}

TEST(TraceJson, OnlyTheWindowIsDrawn)
{
    const std::vector<trace_entry> entries = {plain(1, 0ms, 1ms),
                                              trace_counters{.at = t0 + 5ms, .in_flight = 1}};
    const auto text = duet::server::trace_json(entries, names(), t0 + 2ms, t0 + 3ms);
    const auto doc = json::parse(text);
    EXPECT_TRUE(of_phase(doc, "X").empty());
    EXPECT_TRUE(of_phase(doc, "C").empty());
}

} // namespace
