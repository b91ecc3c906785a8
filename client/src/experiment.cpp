// The experiments: each varies one thing against a duet-server (one it starts, or one it is given), measures
// with the load engine and the server's own reports, and states whether the claim held, with the numbers.
#include <duet/client/experiment.hpp>

#include <duet/client/engine.hpp>
#include <duet/client/http_get.hpp>
#include <duet/client/local_server.hpp>

#include <fmt/format.h>

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <thread>

namespace duet::client {

namespace {

using namespace std::chrono_literals;

constexpr auto fact_timeout = 10s;

// What the server says about itself: /stats for its CPUs and workers, GET / for its limits.
struct server_facts
{
    unsigned usable_cpus = 0;
    unsigned workers = 0;
    std::string version;
    std::map<std::string, std::int64_t> max; ///< "path param" -> the largest value it accepts
    nlohmann::ordered_json environment;

    std::int64_t bounded(const std::string& key, std::int64_t want) const
    {
        auto it = max.find(key);
        return it == max.end() ? want : std::min(want, it->second);
    }
};

nlohmann::json get_json(const url& server, const std::string& path)
{
    http_answer a;
    try {
        a = http_get(server, path, fact_timeout);
    } catch (const http_get_error& e) {
        throw experiment_error{e.what()};
    }
    auto doc = nlohmann::json::parse(a.body, nullptr, false);
    if (a.status == 200 && doc.is_object()) {
        return doc;
    }
    if (a.status == 200 || a.status == 404) {
        throw experiment_error{fmt::format("{} answered {} to GET {} without duet's document: is it a "
                                           "duet-server?",
                                           server.authority(), a.status, path)};
    }
    throw experiment_error{
        fmt::format("{} answered {} to GET {}; no result is claimed", server.authority(), a.status, path)};
}

// What /stats and / say; a field of the wrong type throws nlohmann's exception, which facts_of words.
server_facts read_facts(const url& server)
{
    const auto stats = get_json(server, "/stats");
    const auto index = get_json(server, "/");
    if (!stats.contains("cpus") || !stats.contains("pool") || !index.contains("endpoints") ||
        !index["endpoints"].is_array()) {
        throw experiment_error{server.authority() + " is not a duet-server: its /stats and / are not duet's"};
    }
    server_facts f;
    f.usable_cpus = stats["cpus"].value("usable", 0U);
    f.workers = stats["pool"].value("workers", 0U);
    f.version = stats.value("version", "");
    for (const auto& ep : index["endpoints"]) {
        for (const auto& p : ep.value("params", nlohmann::json::array())) {
            if (p.contains("max") && p["max"].is_number_integer()) {
                f.max[ep.value("path", "") + " " + p.value("name", "")] = p["max"].get<std::int64_t>();
            }
        }
    }
    f.environment = {{"server", server.authority()},
                     {"version", f.version},
                     {"usable_cpus", f.usable_cpus},
                     {"cpus", stats["cpus"]},
                     {"workers", f.workers}};
    return f;
}

server_facts facts_of(const url& server)
{
    try {
        return read_facts(server);
    } catch (const nlohmann::json::exception&) {
        throw experiment_error{server.authority() + " is not a duet-server: its /stats and / are not duet's"};
    }
}

// The server an experiment runs against: the one it was given, or one it starts with `args` (and on one CPU
// when `cpu` is set), stopped when this goes.
class target_server
{
public:
    target_server(const experiment_options& o, std::vector<std::string> args, std::optional<int> cpu = {})
    {
        if (o.target) {
            address_ = *o.target;
            address_.target = "/";
        } else {
            if (o.server_binary.empty()) {
                throw experiment_error{"no duet-server beside duet-load: give a URL or --server PATH"};
            }
            try {
                local_ = std::make_unique<local_server>(
                    local_server::settings{.binary = o.server_binary, .args = std::move(args), .cpu = cpu});
            } catch (const local_server_error& e) {
                throw experiment_error{e.what()};
            }
            address_ = local_->address();
        }
        facts_ = facts_of(address_);
    }

    url at(const std::string& path_and_query) const
    {
        url u = address_;
        u.target = path_and_query;
        return u;
    }
    const server_facts& facts() const noexcept { return facts_; }

    /// The server process's CPU time so far, when it runs here; none for a server elsewhere.
    std::optional<std::chrono::nanoseconds> cpu_time() const
    {
        return local_ ? std::optional{local_->cpu_time()} : std::nullopt;
    }

private:
    std::unique_ptr<local_server> local_;
    url address_;
    server_facts facts_;
};

struct load_shape
{
    unsigned connections = 1;
    std::optional<std::uint64_t> requests{};
    std::optional<std::chrono::nanoseconds> duration{};
    std::optional<double> rate{};
    std::chrono::nanoseconds warmup{0};
};

// One load run; a run with errors or refusals is not a measurement, and says why.
run_result measure(const url& target, const load_shape& shape)
{
    run_options o;
    o.target = target;
    o.connections = shape.connections;
    o.threads = 1;
    o.requests = shape.requests;
    o.duration = shape.duration;
    o.rate = shape.rate;
    o.warmup = shape.warmup;
    o.timeout = 60s;
    o.connect_timeout = 5s;
    run_result r;
    try {
        o.validate();
        load_engine engine{o};
        engine.preflight();
        r = engine.run();
    } catch (const std::exception& e) {
        throw experiment_error{target.to_string() + ": " + e.what()};
    }
    const auto& c = r.counts;
    // Every failure in one line: a server that refuses (503) and closes may also reset some connections.
    std::string wrong;
    for (std::size_t status = 0; status < c.status.size(); ++status) {
        if (c.status[status] > 0 && (status < 200 || status > 299)) {
            wrong += fmt::format("{}the server answered {} to {} requests", wrong.empty() ? "" : "; ", status,
                                 c.status[status]);
        }
    }
    if (c.errors.total() > 0) {
        wrong += fmt::format("{}{} requests failed (connect {}, read {}, write {}, timeout {})",
                             wrong.empty() ? "" : "; ", c.errors.total(), c.errors.connect, c.errors.read,
                             c.errors.write, c.errors.timeout);
    }
    if (!wrong.empty()) {
        throw experiment_error{target.to_string() + ": " + wrong + "; no result is claimed"};
    }
    return r;
}

// A run whose responses must carry duet's reports (the /io and /cpu endpoints).
run_result measure_reported(const url& target, const load_shape& shape)
{
    auto r = measure(target, shape);
    if (r.counts.server.reports < r.counts.requests) {
        throw experiment_error{target.to_string() +
                               ": its responses carry no duet report: is it a duet-server?"};
    }
    return r;
}

double seconds(std::chrono::nanoseconds d)
{
    return std::chrono::duration<double>(d).count();
}
double ms_of_ns(std::uint64_t ns)
{
    return static_cast<double>(ns) / 1e6;
}

void say(const experiment_options& o, const std::string& line)
{
    if (o.log) {
        o.log(line);
    }
}

std::string thousands(std::uint64_t v)
{
    auto s = std::to_string(v);
    for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) {
        s.insert(static_cast<std::size_t>(i), ",");
    }
    return s;
}

// The server's time for /cpu/primes?n=N split in each of `parts`, in seconds: rounds over every count, one
// request each, and the median per count (the lower of two), so that a machine whose load drifts weighs on
// every count alike.
std::vector<double> split_seconds(const target_server& server, std::int64_t n,
                                  const std::vector<std::int64_t>& parts, int rounds)
{
    std::vector<std::vector<double>> runs(parts.size());
    for (int round = 0; round < rounds; ++round) {
        for (std::size_t i = 0; i < parts.size(); ++i) {
            auto r =
                measure_reported(server.at(fmt::format("/cpu/primes?n={}&mode=split&parts={}", n, parts[i])),
                                 {.connections = 1, .requests = 1});
            runs[i].push_back(ms_of_ns(r.counts.server.total.max()) / 1000);
        }
    }
    std::vector<double> medians;
    for (auto& r : runs) {
        std::sort(r.begin(), r.end());
        medians.push_back(r[(r.size() - 1) / 2]);
    }
    return medians;
}

// ---- the experiments
// ----------------------------------------------------------------------------------------

constexpr std::int64_t wait_ms = 100;

experiment_result concurrency(const experiment_options& o)
{
    target_server server{o, {}};
    experiment_result res{.name = "concurrency",
                          .claim = "concurrency overlaps waits: K requests that each wait T take about T "
                                   "together on one thread, at almost no CPU",
                          .varied = "concurrent requests (K)",
                          .figure = "seconds",
                          .unit = "s",
                          .ideal = "ideal (s)"};
    res.environment = server.facts().environment;
    const auto t_ms = server.facts().bounded("/io/sleep ms", wait_ms);
    const std::vector<unsigned> ks =
        o.quick ? std::vector<unsigned>{1, 100, 1000} : std::vector<unsigned>{1, 10, 100, 300, 1000};
    for (unsigned k : ks) {
        const auto cpu_before = server.cpu_time();
        auto r = measure_reported(server.at(fmt::format("/io/sleep?ms={}", t_ms)),
                                  {.connections = k, .requests = k});
        const auto cpu_after = server.cpu_time();
        const double took = seconds(r.elapsed);
        const double t = static_cast<double>(t_ms) / 1000;
        // The server's CPU: its process's when it runs here (accepting, reading and writing included); else
        // what its reports say the handlers used, which leaves the connections' cost out.
        const double cpu_ms =
            cpu_before ? seconds(*cpu_after - *cpu_before) * 1000 : r.counts.server.cpu_us / 1000;
        res.points.push_back({.x = static_cast<double>(k),
                              .label = thousands(k),
                              .values = {{"seconds", took},
                                         {"ideal (s)", t},
                                         {"one after another (s)", t * k},
                                         {cpu_before ? "server CPU (ms)" : "handlers' CPU (ms)", cpu_ms}}});
        say(o, fmt::format("concurrency: {} waits of {} ms: {:.3f} s", k, t_ms, took));
    }
    const auto& last = res.points.back();
    const double took = last.at("seconds");
    const double serial = last.at("one after another (s)");
    const double t = static_cast<double>(t_ms) / 1000;
    res.outcome = took < t + 0.4 ? experiment_result::verdict::held : experiment_result::verdict::failed;
    res.conclusion = fmt::format(
        "{} waits of {} ms took {:.3f} s on one thread, using {:.1f} ms of the server's CPU{}: {:.0f}x less "
        "than one after another ({:.0f} s){}",
        last.label, t_ms, took, last.values.back().second, server.cpu_time() ? "" : " (in its handlers)",
        serial / took, serial,
        res.outcome == experiment_result::verdict::held
            ? "."
            : fmt::format("; more than {:.1f} s, so the claim did not hold here", t + 0.4));
    return res;
}

experiment_result split(const experiment_options& o)
{
    target_server server{o, {}};
    const auto& f = server.facts();
    experiment_result res{.name = "split",
                          .claim =
                              "parallelism needs cores: one job split in P parts is faster up to P = the "
                              "usable CPUs, and no faster beyond",
                          .varied = "parts (P)",
                          .figure = "speedup",
                          .unit = "x",
                          .ideal = "ideal (x)"};
    res.environment = f.environment;
    const auto n = f.bounded("/cpu/primes n", 5'000'000);
    const auto max_parts = f.bounded("/cpu/primes parts", 64);
    // The part counts: powers of two below the CPUs, the CPUs, one more, and twice as many (fewer with
    // --quick), within the server's limit.
    const auto cpus_here = static_cast<std::int64_t>(std::max(1U, f.usable_cpus));
    std::vector<std::int64_t> ps{1};
    if (!o.quick) {
        for (std::int64_t p = 2; p < cpus_here; p *= 2) {
            ps.push_back(p);
        }
    }
    for (auto p : {std::max<std::int64_t>(2, cpus_here), cpus_here + 1, 2 * cpus_here}) {
        if (p > ps.back() && (!o.quick || p != cpus_here + 1)) {
            ps.push_back(p);
        }
    }
    std::erase_if(ps, [&](std::int64_t p) { return p > max_parts; });
    const auto times = split_seconds(server, n, ps, o.quick ? 2 : 3);
    double t1 = 0;
    for (std::size_t i = 0; i < ps.size(); ++i) {
        const double took = times[i];
        if (ps[i] == 1) {
            t1 = took;
        }
        const double speedup = took > 0 ? t1 / took : 0;
        const double ideal = static_cast<double>(std::min<std::int64_t>(ps[i], f.usable_cpus));
        res.points.push_back({.x = static_cast<double>(ps[i]),
                              .label = std::to_string(ps[i]),
                              .values = {{"speedup", speedup}, {"ideal (x)", ideal}, {"seconds", took}}});
        say(o, fmt::format("split: P={}: {:.3f} s, {:.2f}x", ps[i], took, speedup));
    }
    const auto at_p = [&](std::int64_t p) -> const experiment_point* {
        for (const auto& pt : res.points) {
            if (pt.x == static_cast<double>(p)) {
                return &pt;
            }
        }
        return nullptr;
    };
    const auto cpus = static_cast<std::int64_t>(f.usable_cpus);
    if (cpus <= 1) {
        const auto* two = at_p(2);
        const double s2 = two ? two->at("speedup") : 0;
        res.outcome = s2 < 1.2 ? experiment_result::verdict::held : experiment_result::verdict::failed;
        res.conclusion =
            fmt::format("with 1 usable CPU, splitting the job in 2 parts gave {:.2f}x: parts take "
                        "turns on one core, so splitting gains nothing{}",
                        s2, res.outcome == experiment_result::verdict::held ? "." : " (expected < 1.2x).");
        return res;
    }
    const auto* full = at_p(std::min(cpus, max_parts));
    if (full == nullptr) {
        res.outcome = experiment_result::verdict::not_applicable;
        res.conclusion = "no point at P = the usable CPUs was measured";
        return res;
    }
    double beyond = 0;
    for (const auto& pt : res.points) {
        if (pt.x > static_cast<double>(cpus)) {
            beyond = std::max(beyond, pt.at("speedup"));
        }
    }
    const double s = full->at("speedup");
    const bool rises = s >= 0.7 * static_cast<double>(full->x);
    const bool flat = beyond == 0 || beyond <= 1.25 * s;
    res.outcome = rises && flat ? experiment_result::verdict::held : experiment_result::verdict::failed;
    res.conclusion = fmt::format(
        "split in {} parts on {} usable CPUs the job ran {:.2f}x faster (ideal {}x){}", full->label, cpus, s,
        full->x,
        beyond > 0 ? fmt::format("; more parts than CPUs reached {:.2f}x at most", beyond)
                   : std::string{"; no count beyond the CPUs was measured (the server's limits.max_parts)"});
    return res;
}

experiment_result blocking(const experiment_options& o)
{
    target_server server{o, {}};
    const auto& f = server.facts();
    experiment_result res{.name = "blocking",
                          .claim =
                              "computing on the event loop destroys concurrency: while a job runs inline "
                              "every other request waits for it; on the pool none does",
                          .varied = "where the CPU work runs",
                          .figure = "probe p99 (ms)",
                          .unit = "ms"};
    res.environment = f.environment;
    const auto n = f.bounded("/cpu/primes n", 1'000'000);
    const auto span = o.quick ? 1s : 3s;
    double p99[2] = {0, 0};
    double job_ms = 0;
    for (int i = 0; i < 2; ++i) {
        const std::string mode = i == 0 ? "pool" : "inline";
        // The work: one connection, one job after another. The probes: /healthz at a steady rate, measured
        // from their intended send times, so a stalled loop shows in full.
        run_result work;
        std::exception_ptr failed;
        std::thread worker{[&] {
            try {
                work = measure_reported(server.at(fmt::format("/cpu/primes?n={}&mode={}", n, mode)),
                                        {.connections = 1, .duration = span});
            } catch (...) {
                failed = std::current_exception();
            }
        }};
        run_result probes;
        try {
            probes = measure(server.at("/healthz"), {.connections = 4, .duration = span, .rate = 200});
        } catch (...) {
            worker.join();
            throw;
        }
        worker.join();
        if (failed) {
            std::rethrow_exception(failed);
        }
        p99[i] = ms_of_ns(probes.counts.latency.percentile(99));
        job_ms = std::max(job_ms, ms_of_ns(work.counts.server.service.percentile(50)));
        res.points.push_back({.x = static_cast<double>(i),
                              .label = mode,
                              .values = {{"probe p99 (ms)", p99[i]},
                                         {"probe p50 (ms)", ms_of_ns(probes.counts.latency.percentile(50))},
                                         {"probe max (ms)", ms_of_ns(probes.counts.latency.max())},
                                         {"job (ms)", ms_of_ns(work.counts.server.service.percentile(50))}}});
        say(o, fmt::format("blocking: {}: /healthz p99 {:.2f} ms", mode, p99[i]));
    }
    const double ratio = p99[0] > 0 ? p99[1] / p99[0] : 0;
    res.outcome = ratio >= 5 ? experiment_result::verdict::held : experiment_result::verdict::failed;
    res.conclusion = fmt::format(
        "while {:.0f} ms jobs ran inline, /healthz's p99 was {:.1f} ms; with the same jobs "
        "on the pool, {:.2f} ms: {:.0f}x{}",
        job_ms, p99[1], p99[0], ratio,
        res.outcome == experiment_result::verdict::held ? "." : " (the claim needs at least 5x).");
    return res;
}

experiment_result parallelism(const experiment_options& o)
{
    experiment_result res{.name = "parallelism",
                          .claim =
                              "CPU-bound throughput rises with the workers up to the usable CPUs, then stays "
                              "flat",
                          .varied = "workers",
                          .figure = "requests/s",
                          .unit = "req/s",
                          .ideal = "ideal (req/s)"};
    if (o.target) {
        target_server given{o, {}};
        res.environment = given.facts().environment;
        res.outcome = experiment_result::verdict::not_applicable;
        res.conclusion =
            fmt::format("this needs servers with 1, 2, … workers, and {} has {}: run it without a "
                        "URL and duet-load starts them",
                        o.target->authority(), given.facts().workers);
        return res;
    }
    unsigned cpus = 0;
    double one = 0;
    for (unsigned w = 1;; ++w) {
        target_server server{o, {"--workers", std::to_string(w)}};
        const auto& f = server.facts();
        cpus = f.usable_cpus;
        if (w == 1) {
            res.environment = f.environment;
            res.environment["workers"] =
                nlohmann::ordered_json::array(); // one server per count, listed below
        }
        res.environment["workers"].push_back(w);
        const auto n = f.bounded("/cpu/primes n", 200'000);
        auto r = measure_reported(
            server.at(fmt::format("/cpu/primes?n={}", n)),
            {.connections = 2 * w,
             .duration = o.quick ? std::chrono::nanoseconds{1s} : std::chrono::nanoseconds{2s},
             .warmup = 300ms});
        const double rps = r.requests_per_second();
        if (w == 1) {
            one = rps;
        }
        res.points.push_back({.x = static_cast<double>(w),
                              .label = std::to_string(w),
                              .values = {{"requests/s", rps}, {"ideal (req/s)", one * std::min(w, cpus)}}});
        say(o, fmt::format("parallelism: {} workers: {:.0f} requests/s", w, rps));
        if (w >= std::max(2U, std::min(2 * cpus, cpus + 2))) {
            break;
        }
    }
    if (cpus <= 1) {
        res.outcome = experiment_result::verdict::not_applicable;
        res.conclusion =
            fmt::format("this machine lets the server use 1 CPU: throughput cannot rise with workers "
                        "(it was {:.0f} and {:.0f} requests/s with 1 and 2)",
                        res.points[0].at("requests/s"), res.points[1].at("requests/s"));
        return res;
    }
    const double at_cpus = res.points[cpus - 1].at("requests/s");
    double beyond = 0;
    for (const auto& pt : res.points) {
        if (pt.x > cpus) {
            beyond = std::max(beyond, pt.at("requests/s"));
        }
    }
    const double gain = one > 0 ? at_cpus / one : 0;
    const bool rises = gain >= 0.6 * cpus;
    const bool flat = beyond <= 1.25 * at_cpus;
    res.outcome = rises && flat ? experiment_result::verdict::held : experiment_result::verdict::failed;
    res.conclusion =
        fmt::format("{} workers on {} usable CPUs served {:.2f}x what 1 did (ideal {}x); more workers "
                    "than CPUs reached {:.2f}x at most",
                    cpus, cpus, gain, cpus, beyond / one);
    return res;
}

int first_allowed_cpu()
{
    cpu_set_t mask;
    if (sched_getaffinity(0, sizeof(mask), &mask) == 0) {
        for (std::size_t c = 0; c < CPU_SETSIZE; ++c) {
            if (CPU_ISSET(c, &mask)) {
                return static_cast<int>(c);
            }
        }
    }
    return 0;
}

experiment_result single_core(const experiment_options& o)
{
    target_server server{
        o, {"--workers", "2"}, o.target ? std::nullopt : std::optional<int>{first_allowed_cpu()}};
    const auto& f = server.facts();
    experiment_result res{.name = "single-core",
                          .claim = "concurrency works on a single core; parallelism does not",
                          .varied = "what runs on one CPU",
                          .figure = "speedup (x)",
                          .unit = "x"};
    res.environment = f.environment;
    if (f.usable_cpus != 1) {
        res.outcome = experiment_result::verdict::not_applicable;
        res.conclusion =
            fmt::format("{} lets the server use {} CPUs; this needs 1: run it without a URL, or start "
                        "the server with taskset -c 0 (or a container with --cpus=1)",
                        server.at("/").authority(), f.usable_cpus);
        return res;
    }
    const auto t_ms = f.bounded("/io/sleep ms", wait_ms);
    const unsigned k = 1000;
    auto waits =
        measure_reported(server.at(fmt::format("/io/sleep?ms={}", t_ms)), {.connections = k, .requests = k});
    const double took = seconds(waits.elapsed);
    const double serial = static_cast<double>(k * t_ms) / 1000;
    res.points.push_back({.x = 0,
                          .label = "1,000 waits, against one after another",
                          .values = {{"speedup (x)", took > 0 ? serial / took : 0}, {"seconds", took}}});
    const auto n = f.bounded("/cpu/primes n", 2'000'000);
    // One part and two, alternating, and the median of each: on one CPU anything else running there (the
    // connections of the waits above closing, another program) would otherwise weigh on one side only.
    const auto times = split_seconds(server, n, {1, 2}, o.quick ? 3 : 5);
    const double speedup = times[1] > 0 ? times[0] / times[1] : 0;
    res.points.push_back({.x = 1,
                          .label = "a job in 2 parts, against 1",
                          .values = {{"speedup (x)", speedup}, {"seconds", times[1]}}});
    const bool overlap = took < static_cast<double>(t_ms) / 1000 + 0.4;
    res.outcome =
        overlap && speedup < 1.2 ? experiment_result::verdict::held : experiment_result::verdict::failed;
    res.conclusion =
        fmt::format("on one CPU, 1,000 waits of {} ms took {:.3f} s ({:.0f}x faster than one after "
                    "another), while a job split in 2 parts ran {:.2f}x as fast as in one",
                    t_ms, took, serial / took, speedup);
    return res;
}

const char* verdict_name(experiment_result::verdict v)
{
    switch (v) {
    case experiment_result::verdict::held:
        return "held";
    case experiment_result::verdict::failed:
        return "failed";
    case experiment_result::verdict::not_applicable:
        return "not_applicable";
    }
    return "";
}

} // namespace

double experiment_point::at(std::string_view name) const
{
    for (const auto& [k, v] : values) {
        if (k == name) {
            return v;
        }
    }
    return 0;
}

nlohmann::ordered_json experiment_result::to_json() const
{
    nlohmann::ordered_json pts = nlohmann::ordered_json::array();
    for (const auto& p : points) {
        nlohmann::ordered_json v = nlohmann::ordered_json::object();
        for (const auto& [k, x] : p.values) {
            v[k] = x;
        }
        pts.push_back({{"x", p.x}, {"label", p.label}, {"values", std::move(v)}});
    }
    return {{"name", name},
            {"claim", claim},
            {"varied", varied},
            {"figure", figure},
            {"unit", unit},
            {"ideal", ideal},
            {"points", pts},
            {"verdict", verdict_name(outcome)},
            {"conclusion", conclusion},
            {"environment", environment}};
}

std::string experiment_result::table() const
{
    std::string out = fmt::format("{}: {}\n", name, claim);
    if (!points.empty()) {
        out += fmt::format("  {:>24}", varied);
        for (const auto& [k, v] : points.front().values) {
            out += fmt::format(" {:>22}", k);
        }
        out += "\n";
        for (const auto& p : points) {
            out += fmt::format("  {:>24}", p.label);
            for (const auto& [k, v] : p.values) {
                out += fmt::format(" {:>22.3f}", v);
            }
            out += "\n";
        }
    }
    const char* tag = outcome == verdict::held     ? "held"
                      : outcome == verdict::failed ? "DID NOT HOLD"
                                                   : "not shown here";
    out += fmt::format("  [{}] {}\n", tag, conclusion);
    return out;
}

const std::vector<std::string>& experiment_names()
{
    static const std::vector<std::string> names{"concurrency", "parallelism", "split", "blocking",
                                                "single-core"};
    return names;
}

experiment_result run_experiment(std::string_view name, const experiment_options& options)
{
    if (name == "concurrency") {
        return concurrency(options);
    }
    if (name == "parallelism") {
        return parallelism(options);
    }
    if (name == "split") {
        return split(options);
    }
    if (name == "blocking") {
        return blocking(options);
    }
    if (name == "single-core") {
        return single_core(options);
    }
    std::string known;
    for (const auto& n : experiment_names()) {
        known += (known.empty() ? "" : ", ") + n;
    }
    throw experiment_error{
        fmt::format("no experiment named '{}': the experiments are {}, and all", name, known)};
}

} // namespace duet::client
