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
    std::int64_t blocking_threads = 0;     ///< mode=threads' pool (io.blocking_threads); 0: it has none
    std::int64_t blocking_queue_limit = 0; ///< waits that may queue for one of them (io.blocking_queue_limit)
    std::int64_t free_descriptors = -1;    ///< its descriptor limit less those open; -1: not said
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
    if (stats.contains("blocking") && stats["blocking"].is_object()) {
        f.blocking_threads = stats["blocking"].value("threads", std::int64_t{0});
        f.blocking_queue_limit = stats["blocking"].value("queue_limit", std::int64_t{0});
    }
    if (stats.contains("fds") && stats["fds"].is_object() && stats["fds"].contains("max")) {
        f.free_descriptors =
            stats["fds"].value("max", std::int64_t{0}) - stats["fds"].value("open", std::int64_t{0});
    }
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

    /// Its threads' context switches so far, when it runs here; none for a server elsewhere.
    std::optional<std::int64_t> context_switches() const
    {
        return local_ ? std::optional{local_->context_switches()} : std::nullopt;
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

// Waits per blocking thread that the threads experiment needs: with fewer, most waits find a free thread and
// the two models take about the same time, which shows nothing.
constexpr std::int64_t min_waits_per_thread = 4;

// Descriptors a server keeps for itself (its listener, data file, upstream) beyond one per connection.
constexpr std::int64_t spare_descriptors = 16;

// As many of `want` waits as the server takes at once: those beyond its blocking threads queue for one, up to
// the queue's bound, and each holds a connection, so one of its descriptors.
std::int64_t concurrent_waits(const server_facts& f, std::int64_t want)
{
    auto k = std::min(want, f.blocking_threads + f.blocking_queue_limit);
    if (f.free_descriptors >= 0) {
        k = std::min(k, f.free_descriptors - spare_descriptors);
    }
    return std::max<std::int64_t>(k, 0);
}

// Why this server cannot show the threads experiment, and what would let it; "" when it can.
std::string threads_unshowable(const server_facts& f, const std::string& name, std::int64_t want,
                               std::int64_t t_ms, std::int64_t k)
{
    if (f.blocking_threads <= 0) {
        return fmt::format("{} has no blocking threads (its /stats has no blocking pool): this needs a "
                           "duet-server with mode=threads",
                           name);
    }
    if (t_ms < 10) {
        return fmt::format(
            "{} allows waits of {} ms at most (limits.max_sleep_ms): too short to tell the two "
            "models apart from the time connecting takes",
            name, t_ms);
    }
    const auto n = f.blocking_threads;
    if (k >= min_waits_per_thread * n) {
        return "";
    }
    // What would let the waits queue: fewer threads, a longer queue, more descriptors.
    const auto most_threads = want / min_waits_per_thread;
    const auto fit = std::min(n, most_threads);
    std::string changes;
    const auto change = [&](const std::string& c) { changes += (changes.empty() ? "" : " and ") + c; };
    if (n > most_threads) {
        change(fmt::format("io.blocking_threads={} or fewer", most_threads));
    }
    if (fit + f.blocking_queue_limit < min_waits_per_thread * fit) {
        change(fmt::format("io.blocking_queue_limit={} or more", (min_waits_per_thread - 1) * fit));
    }
    if (f.free_descriptors >= 0 && f.free_descriptors - spare_descriptors < min_waits_per_thread * fit) {
        change("a higher descriptor limit (ulimit -n)");
    }
    // What bound the waits: this experiment's count, the threads and their queue, or the descriptors.
    const auto bound = k == want ? std::string{"all this experiment makes"}
                       : k == n + f.blocking_queue_limit
                           ? fmt::format("{} on the threads and {} in their queue", n, f.blocking_queue_limit)
                           : fmt::format("it has {} descriptors free", f.free_descriptors);
    return fmt::format("{} has {} blocking threads and would run {} waits at once ({}): fewer than {} a "
                       "thread, too few to queue. Start it with {}, or run this without a URL",
                       name, thousands(static_cast<std::uint64_t>(n)),
                       thousands(static_cast<std::uint64_t>(k)), bound, min_waits_per_thread, changes);
}

// K waits at once (one request and one connection each) in one model, and what the server spent on them.
struct waits_run
{
    double seconds = 0;
    double longest_queue_ms = 0; ///< the longest a wait queued for a free blocking thread
    double cpu_ms = 0;           ///< the server process's, or its handlers' for a server elsewhere
    std::optional<std::int64_t> switches{};
};

waits_run run_waits(const target_server& server, std::int64_t k, std::int64_t t_ms, std::string_view mode)
{
    const auto cpu_before = server.cpu_time();
    const auto switches_before = server.context_switches();
    const auto query = fmt::format("/io/sleep?ms={}&mode={}", t_ms, mode);
    auto r = measure_reported(server.at(query), {.connections = static_cast<unsigned>(k),
                                                 .requests = static_cast<std::uint64_t>(k)});
    const auto cpu_after = server.cpu_time();
    const auto switches_after = server.context_switches();
    // A server that took the parameter but waited elsewhere would make the comparison meaningless.
    const std::string model = mode == "threads" ? "blocking-thread" : "event-loop";
    const auto m = r.counts.server.models.find(model);
    if (m == r.counts.server.models.end() || m->second < r.counts.requests) {
        throw experiment_error{fmt::format("{}: its reports do not say model {} for every wait; no result is "
                                           "claimed",
                                           server.at(query).to_string(), model)};
    }
    return {.seconds = seconds(r.elapsed),
            .longest_queue_ms = ms_of_ns(r.counts.server.queue.max()),
            .cpu_ms = cpu_before ? seconds(*cpu_after - *cpu_before) * 1000 : r.counts.server.cpu_us / 1000,
            .switches = switches_before ? std::optional{*switches_after - *switches_before} : std::nullopt};
}

experiment_result threads(const experiment_options& o)
{
    experiment_result res{.name = "threads",
                          .claim =
                              "a thread per wait caps concurrency: K waits of T take about T on the event "
                              "loop, and K / N rounds of T on N blocking threads",
                          .varied = "where the waits run",
                          .figure = "seconds",
                          .unit = "s",
                          .ideal = "predicted (s)"};
    // The thread counts of the servers duet-load starts, one server each; a given server has its own.
    const std::vector<std::int64_t> counts =
        o.quick ? std::vector<std::int64_t>{50} : std::vector<std::int64_t>{50, 100};
    const std::int64_t want = o.quick ? 500 : 1000;
    const bool local = !o.target;
    std::int64_t k = 0;
    std::int64_t t_ms = 0;
    waits_run loop;
    struct on_threads
    {
        std::int64_t threads;
        double predicted;
        waits_run run;
    };
    std::vector<on_threads> measured;
    for (std::size_t i = 0; i < (local ? counts.size() : 1); ++i) {
        target_server server{
            o, local ? std::vector<std::string>{"--set", fmt::format("io.blocking_threads={}", counts[i])}
                     : std::vector<std::string>{}};
        const auto& f = server.facts();
        const std::string name = server.at("/").authority();
        if (i == 0) {
            res.environment = f.environment;
            res.environment["blocking_threads"] = nlohmann::ordered_json::array(); // per server, below
            res.environment["blocking_queue_limit"] = f.blocking_queue_limit;
            t_ms = f.bounded("/io/sleep ms", wait_ms);
            k = concurrent_waits(f, want);
            if (auto why = threads_unshowable(f, name, want, t_ms, k); !why.empty()) {
                res.outcome = experiment_result::verdict::not_applicable;
                res.conclusion = std::move(why);
                return res;
            }
            loop = run_waits(server, k, t_ms, "loop");
            say(o, fmt::format("threads: {} waits of {} ms on the event loop: {:.3f} s",
                               thousands(static_cast<std::uint64_t>(k)), t_ms, loop.seconds));
        }
        res.environment["blocking_threads"].push_back(f.blocking_threads);
        // Whole rounds: each thread takes its share of the waits one after another, ceil(K / N) of them.
        const auto rounds = (k + f.blocking_threads - 1) / f.blocking_threads;
        const double predicted = static_cast<double>(rounds * t_ms) / 1000;
        measured.push_back({.threads = f.blocking_threads,
                            .predicted = predicted,
                            .run = run_waits(server, k, t_ms, "threads")});
        say(o, fmt::format("threads: {} waits of {} ms on {} blocking threads: {:.3f} s (predicted {:g} s)",
                           thousands(static_cast<std::uint64_t>(k)), t_ms, f.blocking_threads,
                           measured.back().run.seconds, predicted));
    }
    const double t = static_cast<double>(t_ms) / 1000;
    const std::string cpu_name = local ? "server CPU (ms)" : "handlers' CPU (ms)";
    const auto point = [&](double x, std::string label, double predicted, const waits_run& w) {
        experiment_point p{.x = x,
                           .label = std::move(label),
                           .values = {{"seconds", w.seconds},
                                      {"predicted (s)", predicted},
                                      {"longest queue (ms)", w.longest_queue_ms},
                                      {cpu_name, w.cpu_ms}}};
        if (w.switches) {
            p.values.emplace_back("context switches", static_cast<double>(*w.switches));
        }
        return p;
    };
    res.points.push_back(point(0, "event loop", t, loop));
    bool within = loop.seconds < t + 0.4;
    for (const auto& m : measured) {
        res.points.push_back(
            point(static_cast<double>(m.threads), fmt::format("{} threads", m.threads), m.predicted, m.run));
        // As long as predicted, give or take: no faster than whole rounds allow, and slower only by a
        // quarter plus the time the loop is allowed for connecting.
        within = within && m.run.seconds >= 0.9 * m.predicted && m.run.seconds <= 1.25 * m.predicted + 0.4;
    }
    res.outcome = within ? experiment_result::verdict::held : experiment_result::verdict::failed;
    std::string on_threads;
    for (std::size_t i = 0; i < measured.size(); ++i) {
        on_threads +=
            fmt::format("{}{:.3f} s on {}{} (predicted {:g} s)", i == 0 ? "" : ", ", measured[i].run.seconds,
                        measured[i].threads, i == 0 ? " blocking threads" : "", measured[i].predicted);
    }
    const auto& slow = measured.front();
    std::string cost = fmt::format("{} {:.1f} ms of CPU on the loop against {:.1f} ms on {} threads",
                                   local ? "the server used" : "its handlers used", loop.cpu_ms,
                                   slow.run.cpu_ms, slow.threads);
    if (loop.switches && slow.run.switches) {
        cost +=
            fmt::format(", and switched context {} times against {}",
                        thousands(static_cast<std::uint64_t>(std::max<std::int64_t>(0, *loop.switches))),
                        thousands(static_cast<std::uint64_t>(std::max<std::int64_t>(0, *slow.run.switches))));
    }
    res.conclusion = fmt::format(
        "{} waits of {} ms took {:.3f} s on the event loop and {}: {:.0f}x slower on {} threads; {}{}",
        thousands(static_cast<std::uint64_t>(k)), t_ms, loop.seconds, on_threads,
        loop.seconds > 0 ? slow.run.seconds / loop.seconds : 0, slow.threads, cost,
        within ? "."
               : fmt::format("; the claim needs the loop under {:.1f} s and each threads time within 0.9x to "
                             "1.25x (+0.4 s) its prediction",
                             t + 0.4));
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
    static const std::vector<std::string> names{"concurrency", "threads",  "parallelism",
                                                "split",       "blocking", "single-core"};
    return names;
}

experiment_result run_experiment(std::string_view name, const experiment_options& options)
{
    if (name == "concurrency") {
        return concurrency(options);
    }
    if (name == "threads") {
        return threads(options);
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
