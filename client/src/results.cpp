// A run's results: merging the threads' tallies, and the wrk-style text and the JSON report.
#include <duet/client/results.hpp>

#include <duet/version.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace duet::client {

namespace {

double us(double ns)
{
    return ns / 1000.0;
}

// wrk's units: 812.00us, 10.12ms, 1.20s.
std::string human_time(double microseconds)
{
    if (microseconds < 1000) {
        return fmt::format("{:.2f}us", microseconds);
    }
    if (microseconds < 1e6) {
        return fmt::format("{:.2f}ms", microseconds / 1000);
    }
    return fmt::format("{:.2f}s", microseconds / 1e6);
}

std::string human_bytes(double bytes)
{
    const char* units[] = {"B", "KB", "MB", "GB", "TB"};
    int u = 0;
    while (bytes >= 1024 && u < 4) {
        bytes /= 1024;
        ++u;
    }
    return fmt::format("{:.2f}{}", bytes, units[u]);
}

template <typename Map>
nlohmann::ordered_json map_json(const Map& m)
{
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    for (const auto& [k, v] : m) {
        if constexpr (std::is_same_v<std::decay_t<decltype(k)>, std::string>) {
            j[k] = v;
        } else {
            j[std::to_string(k)] = v;
        }
    }
    return j;
}

void require(bool ok, const char* what)
{
    if (!ok) {
        throw std::invalid_argument{std::string{"not a duet-load result: "} + what};
    }
}

} // namespace

error_counts& error_counts::operator+=(const error_counts& o)
{
    connect += o.connect;
    read += o.read;
    write += o.write;
    timeout += o.timeout;
    return *this;
}

bool server_view::add_body(std::string_view body)
{
    // Cheap test first: most bodies (/healthz) are not reports and must cost nothing more.
    if (body.size() < 20 || body.front() != '{' || body.find("\"report\"") == std::string_view::npos) {
        return false;
    }
    auto doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (!doc.is_object() || !doc.contains("report") || !doc["report"].is_object()) {
        return false;
    }
    const auto& r = doc["report"];
    auto ns = [](const nlohmann::json& v) {
        return v.is_number() ? static_cast<std::uint64_t>(std::max(0.0, v.get<double>() * 1000.0)) : 0;
    };
    if (r.contains("timing_us") && r["timing_us"].is_object()) {
        const auto& t = r["timing_us"];
        total.record(ns(t.value("total", nlohmann::json{})));
        queue.record(ns(t.value("queue", nlohmann::json{})));
        service.record(ns(t.value("service", nlohmann::json{})));
    }
    if (r.contains("model") && r["model"].is_string()) {
        ++models[r["model"].get<std::string>()];
    }
    if (r.contains("threads") && r["threads"].is_object()) {
        const auto& th = r["threads"];
        // Who did the work: the worker for pool jobs, the I/O thread for event-loop and inline work; for a
        // split request, every part's worker.
        if (r.contains("split") && r["split"].is_object() && r["split"].contains("per_part")) {
            for (const auto& part : r["split"]["per_part"]) {
                if (part.contains("worker") && part["worker"].contains("name")) {
                    ++threads[part["worker"]["name"].get<std::string>()];
                }
            }
        } else if (th.contains("worker") && th["worker"].is_object() && th["worker"].contains("name")) {
            ++threads[th["worker"]["name"].get<std::string>()];
        } else if (th.contains("io") && th["io"].is_object() && th["io"].contains("name")) {
            ++threads[th["io"]["name"].get<std::string>()];
        }
    }
    if (r.contains("cores") && r["cores"].is_object() && r["cores"].contains("end") &&
        r["cores"]["end"].is_number()) {
        ++cores[r["cores"]["end"].get<int>()];
    }
    if (r.contains("cpu_time_us") && r["cpu_time_us"].is_number()) {
        cpu_us += r["cpu_time_us"].get<double>();
    }
    ++reports;
    return true;
}

void server_view::merge(const server_view& o)
{
    reports += o.reports;
    cpu_us += o.cpu_us;
    total.merge(o.total);
    queue.merge(o.queue);
    service.merge(o.service);
    for (const auto& [k, v] : o.threads) {
        threads[k] += v;
    }
    for (const auto& [k, v] : o.cores) {
        cores[k] += v;
    }
    for (const auto& [k, v] : o.models) {
        models[k] += v;
    }
}

std::uint64_t tally::non_2xx_3xx() const
{
    std::uint64_t n = 0;
    for (std::size_t code = 0; code < status.size(); ++code) {
        if (code < 200 || code >= 400) {
            n += status[code];
        }
    }
    return n;
}

void tally::merge(const tally& o)
{
    requests += o.requests;
    bytes_read += o.bytes_read;
    late += o.late;
    warmup_requests += o.warmup_requests;
    reconnects += o.reconnects;
    for (std::size_t i = 0; i < status.size(); ++i) {
        status[i] += o.status[i];
    }
    errors += o.errors;
    latency.merge(o.latency);
    service.merge(o.service);
    server.merge(o.server);
}

double run_result::requests_per_second() const
{
    double s = std::chrono::duration<double>(elapsed).count();
    return s > 0 ? static_cast<double>(counts.requests) / s : 0.0;
}

nlohmann::ordered_json percentiles_us(const histogram& h)
{
    return {
        {"count", h.count()},
        {"mean", us(h.mean())},
        {"stdev", us(h.stdev())},
        {"min", us(static_cast<double>(h.min()))},
        {"p50", us(static_cast<double>(h.percentile(50)))},
        {"p75", us(static_cast<double>(h.percentile(75)))},
        {"p90", us(static_cast<double>(h.percentile(90)))},
        {"p99", us(static_cast<double>(h.percentile(99)))},
        {"p99.9", us(static_cast<double>(h.percentile(99.9)))},
        {"p99.99", us(static_cast<double>(h.percentile(99.99)))},
        {"max", us(static_cast<double>(h.max()))},
    };
}

namespace {

nlohmann::ordered_json server_json(const server_view& s)
{
    if (s.reports == 0) {
        return nullptr;
    }
    return {
        {"reports", s.reports},
        {"total_us", percentiles_us(s.total)},
        {"queue_us", percentiles_us(s.queue)},
        {"service_us", percentiles_us(s.service)},
        {"models", map_json(s.models)},
        {"threads", map_json(s.threads)},
        {"cores", map_json(s.cores)},
        {"histograms",
         {{"total", s.total.to_json()}, {"queue", s.queue.to_json()}, {"service", s.service.to_json()}}},
    };
}

// The parts of a result document that merge by addition, and from which the rest is computed again.
struct parsed_run
{
    tally counts;
    double elapsed_s = 0;
    std::vector<second_sample> series;
};

parsed_run parse_run(const nlohmann::json& j)
{
    require(j.is_object() && j.value("tool", "") == "duet-load", "no \"tool\": \"duet-load\"");
    parsed_run p;
    auto& c = p.counts;
    const auto& req = j.at("requests");
    c.requests = req.at("completed").get<std::uint64_t>();
    c.late = req.value("late", std::uint64_t{0});
    c.warmup_requests = req.value("warmup", std::uint64_t{0});
    c.reconnects = j.at("connections").value("reconnects", std::uint64_t{0});
    c.bytes_read = j.at("bytes").at("read").get<std::uint64_t>();
    for (const auto& [code, n] : j.at("status").items()) {
        auto i = static_cast<std::size_t>(std::stoul(code));
        require(i < c.status.size(), "a status code out of range");
        c.status[i] = n.get<std::uint64_t>();
    }
    const auto& e = j.at("errors");
    c.errors = {e.at("connect").get<std::uint64_t>(), e.at("read").get<std::uint64_t>(),
                e.at("write").get<std::uint64_t>(), e.at("timeout").get<std::uint64_t>()};
    c.latency = histogram::from_json(j.at("histograms").at("latency"));
    c.service = histogram::from_json(j.at("histograms").at("service"));
    if (j.contains("server") && !j["server"].is_null()) {
        const auto& s = j["server"];
        auto& v = c.server;
        v.reports = s.at("reports").get<std::uint64_t>();
        v.total = histogram::from_json(s.at("histograms").at("total"));
        v.queue = histogram::from_json(s.at("histograms").at("queue"));
        v.service = histogram::from_json(s.at("histograms").at("service"));
        for (const auto& [k, n] : s.at("models").items()) {
            v.models[k] = n.get<std::uint64_t>();
        }
        for (const auto& [k, n] : s.at("threads").items()) {
            v.threads[k] = n.get<std::uint64_t>();
        }
        for (const auto& [k, n] : s.at("cores").items()) {
            v.cores[std::stoi(k)] = n.get<std::uint64_t>();
        }
    }
    p.elapsed_s = j.at("duration_s").get<double>();
    for (const auto& s : j.at("series")) {
        p.series.push_back({s.at("t").get<double>(), s.at("requests").get<std::uint64_t>(),
                            s.at("errors").get<std::uint64_t>(), s.at("p50_us").get<double>(),
                            s.at("p99_us").get<double>()});
    }
    return p;
}

} // namespace

nlohmann::ordered_json to_json(const run_result& r, const run_options& o)
{
    const auto& c = r.counts;
    double seconds = std::chrono::duration<double>(r.elapsed).count();
    nlohmann::ordered_json status = nlohmann::ordered_json::object();
    for (std::size_t code = 0; code < c.status.size(); ++code) {
        if (c.status[code] != 0) {
            status[std::to_string(code)] = c.status[code];
        }
    }
    nlohmann::ordered_json series = nlohmann::ordered_json::array();
    for (const auto& s : r.series) {
        series.push_back({{"t", s.t},
                          {"requests", s.requests},
                          {"errors", s.errors},
                          {"p50_us", s.p50_us},
                          {"p99_us", s.p99_us}});
    }
    nlohmann::ordered_json headers = nlohmann::ordered_json::array();
    for (const auto& [k, v] : o.headers) {
        headers.push_back(k + ": " + v);
    }
    nlohmann::ordered_json threads = nlohmann::ordered_json::array();
    for (const auto& [name, busy] : r.thread_busy_percent) {
        threads.push_back({{"name", name}, {"busy_percent", busy}});
    }
    auto secs = [](std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); };
    return {
        {"tool", "duet-load"},
        {"version", duet::version},
        {"config",
         {{"url", o.target.to_string()},
          {"method", o.method},
          {"connections", o.connections},
          {"threads", o.threads},
          {"duration_s", o.duration ? nlohmann::ordered_json(secs(*o.duration)) : nullptr},
          {"requests", o.requests ? nlohmann::ordered_json(*o.requests) : nullptr},
          {"rate", o.rate ? nlohmann::ordered_json(*o.rate) : nullptr},
          {"open_loop", o.rate.has_value()},
          {"timeout_s", secs(o.timeout)},
          {"connect_timeout_s", secs(o.connect_timeout)},
          {"warmup_s", secs(o.warmup)},
          {"headers", std::move(headers)},
          {"body_bytes", o.body.size()}}},
        {"environment", {{"client_cpus", r.client_cpus}, {"started_at", r.started_at}}},
        {"interrupted", r.interrupted},
        {"duration_s", seconds},
        {"requests",
         {{"completed", c.requests},
          {"per_second", r.requests_per_second()},
          {"late", c.late},
          {"warmup", c.warmup_requests}}},
        {"bytes",
         {{"read", c.bytes_read},
          {"per_second", seconds > 0 ? static_cast<double>(c.bytes_read) / seconds : 0.0}}},
        {"connections", {{"reconnects", c.reconnects}}},
        {"status", std::move(status)},
        {"errors",
         {{"connect", c.errors.connect},
          {"read", c.errors.read},
          {"write", c.errors.write},
          {"timeout", c.errors.timeout},
          {"non_2xx_3xx", c.non_2xx_3xx()}}},
        {"latency_us", percentiles_us(c.latency)},
        {"service_us", percentiles_us(c.service)},
        {"series", std::move(series)},
        {"client",
         {{"cpu_percent", r.client_cpu_percent}, {"threads", std::move(threads)}, {"warnings", r.warnings}}},
        {"server", server_json(c.server)},
        {"histograms", {{"latency", c.latency.to_json()}, {"service", c.service.to_json()}}},
    };
}

namespace {
nlohmann::ordered_json merge_runs(const std::vector<nlohmann::json>& runs);
}

nlohmann::ordered_json merge_json(const std::vector<nlohmann::json>& runs)
{
    try {
        return merge_runs(runs);
    } catch (const nlohmann::json::exception& e) {
        throw std::invalid_argument{std::string{"not a duet-load result: "} + e.what()};
    }
}

namespace {

nlohmann::ordered_json merge_runs(const std::vector<nlohmann::json>& runs)
{
    require(!runs.empty(), "nothing to merge");
    for (const auto& j : runs) {
        require(j.is_object() && j.value("tool", "") == "duet-load", "no \"tool\": \"duet-load\"");
    }
    run_result merged;
    run_options options;
    options.target = parse_url(runs.front().at("config").at("url").get<std::string>());
    options.method = runs.front().at("config").at("method").get<std::string>();
    options.connections = 0;
    options.threads = 0;
    double elapsed_s = 0;
    std::vector<std::string> warnings;
    for (const auto& j : runs) {
        auto p = parse_run(j);
        merged.counts.merge(p.counts);
        // Runs made at the same time: the merged run lasts as long as the longest of them.
        elapsed_s = std::max(elapsed_s, p.elapsed_s);
        for (const auto& s : p.series) {
            auto it = std::find_if(merged.series.begin(), merged.series.end(),
                                   [&](const second_sample& m) { return std::abs(m.t - s.t) < 1e-6; });
            if (it == merged.series.end()) {
                merged.series.push_back(s);
            } else {
                it->requests += s.requests;
                it->errors += s.errors;
                it->p50_us = std::max(it->p50_us, s.p50_us);
                it->p99_us = std::max(it->p99_us, s.p99_us);
            }
        }
        options.connections += j.at("config").at("connections").get<unsigned>();
        options.threads += j.at("config").at("threads").get<unsigned>();
        merged.client_cpus += j.at("environment").value("client_cpus", 0U);
        merged.interrupted = merged.interrupted || j.value("interrupted", false);
        for (const auto& w : j.at("client").at("warnings")) {
            warnings.push_back(w.get<std::string>());
        }
    }
    std::sort(merged.series.begin(), merged.series.end(),
              [](const auto& a, const auto& b) { return a.t < b.t; });
    merged.elapsed = std::chrono::nanoseconds{static_cast<std::int64_t>(elapsed_s * 1e9)};
    merged.warnings = std::move(warnings);
    merged.started_at = runs.front().at("environment").value("started_at", "");
    auto out = to_json(merged, options);
    out["merged_from"] = runs.size();
    out["client"]["cpu_percent"] = nullptr; // per machine; see the inputs
    return out;
}

} // namespace

std::string text_summary(const nlohmann::ordered_json& run, bool latency_table)
{
    std::string out;
    auto line = [&out](const std::string& s) { out += s + "\n"; };
    const auto& cfg = run["config"];
    const auto& lat = run["latency_us"];
    double seconds = run["duration_s"].get<double>();
    std::string mode = cfg["open_loop"].get<bool>()
                           ? fmt::format(" at {:.0f} req/s (open loop; latency from the intended send time)",
                                         cfg["rate"].get<double>())
                           : "";
    line(fmt::format("{:.2f}s test @ {}{}", seconds, cfg["url"].get<std::string>(), mode));
    line(fmt::format("  {} threads and {} connections", cfg["threads"].get<unsigned>(),
                     cfg["connections"].get<unsigned>()));
    line("  Thread Stats   Avg      Stdev     Max");
    line(fmt::format("    Latency   {:>8} {:>8} {:>8}", human_time(lat["mean"].get<double>()),
                     human_time(lat["stdev"].get<double>()), human_time(lat["max"].get<double>())));
    if (latency_table) {
        line("  Latency Distribution");
        for (const char* p : {"p50", "p75", "p90", "p99", "p99.9", "p99.99"}) {
            line(fmt::format("   {:>6}%  {:>8}", std::string{p + 1}, human_time(lat[p].get<double>())));
        }
    }
    if (cfg["open_loop"].get<bool>()) {
        const auto& svc = run["service_us"];
        line(fmt::format("  Service time (send -> response, uncorrected): p50 {}  p99 {}  max {}",
                         human_time(svc["p50"].get<double>()), human_time(svc["p99"].get<double>()),
                         human_time(svc["max"].get<double>())));
        line(fmt::format("  Requests sent more than 1 ms late: {}",
                         run["requests"]["late"].get<std::uint64_t>()));
    }
    auto completed = run["requests"]["completed"].get<std::uint64_t>();
    line(fmt::format("  {} requests in {:.2f}s, {} read", completed, seconds,
                     human_bytes(static_cast<double>(run["bytes"]["read"].get<std::uint64_t>()))));
    const auto& e = run["errors"];
    auto transport = e["connect"].get<std::uint64_t>() + e["read"].get<std::uint64_t>() +
                     e["write"].get<std::uint64_t>() + e["timeout"].get<std::uint64_t>();
    if (transport > 0) {
        line(fmt::format("  Socket errors: connect {}, read {}, write {}, timeout {}",
                         e["connect"].get<std::uint64_t>(), e["read"].get<std::uint64_t>(),
                         e["write"].get<std::uint64_t>(), e["timeout"].get<std::uint64_t>()));
    }
    if (e["non_2xx_3xx"].get<std::uint64_t>() > 0) {
        line(fmt::format("  Non-2xx or 3xx responses: {}", e["non_2xx_3xx"].get<std::uint64_t>()));
    }
    std::string codes;
    for (const auto& [code, n] : run["status"].items()) {
        codes += fmt::format("{}{}: {}", codes.empty() ? "" : ", ", code, n.get<std::uint64_t>());
    }
    if (!codes.empty()) {
        line("  Status codes: " + codes);
    }
    line(fmt::format("Requests/sec: {:>10.2f}", run["requests"]["per_second"].get<double>()));
    line(fmt::format("Transfer/sec: {:>10}", human_bytes(run["bytes"]["per_second"].get<double>())));
    if (!run["server"].is_null()) {
        const auto& s = run["server"];
        line(fmt::format(
            "Server's view ({} reports): total p50 {} p99 {}; queue p50 {} p99 {}; service p50 {} p99 {}",
            s["reports"].get<std::uint64_t>(), human_time(s["total_us"]["p50"].get<double>()),
            human_time(s["total_us"]["p99"].get<double>()), human_time(s["queue_us"]["p50"].get<double>()),
            human_time(s["queue_us"]["p99"].get<double>()), human_time(s["service_us"]["p50"].get<double>()),
            human_time(s["service_us"]["p99"].get<double>())));
        line(fmt::format(
            "  client latency p50 {} - server total p50 {} = {} in the network and the client",
            human_time(lat["p50"].get<double>()), human_time(s["total_us"]["p50"].get<double>()),
            human_time(std::max(0.0, lat["p50"].get<double>() - s["total_us"]["p50"].get<double>()))));
        std::string who;
        for (const auto& [name, n] : s["threads"].items()) {
            who += fmt::format("{}{} {}", who.empty() ? "" : ", ", name, n.get<std::uint64_t>());
        }
        std::string models;
        for (const auto& [name, n] : s["models"].items()) {
            models += fmt::format("{}{} {}", models.empty() ? "" : ", ", name, n.get<std::uint64_t>());
        }
        std::string cores;
        for (const auto& [core, n] : s["cores"].items()) {
            cores += fmt::format("{}cpu{} {}", cores.empty() ? "" : ", ", core, n.get<std::uint64_t>());
        }
        line("  served by threads: " + who);
        line("  on cores: " + cores + "; models: " + models);
    }
    if (!run["client"]["cpu_percent"].is_null()) {
        line(fmt::format("Client CPU: {:.0f}% of one core", run["client"]["cpu_percent"].get<double>()));
    }
    for (const auto& w : run["client"]["warnings"]) {
        line("warning: " + w.get<std::string>());
    }
    if (run.value("interrupted", false)) {
        line("(interrupted: the figures cover what ran before Ctrl-C)");
    }
    return out;
}

} // namespace duet::client
