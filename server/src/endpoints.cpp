// The endpoint table, built from the configuration's limits, the plain endpoints' answers, and GET /'s index
// generated from the table.
#include <duet/server/accept.hpp>
#include <duet/server/assets.hpp>
#include <duet/server/handlers.hpp>
#include <duet/server/server_state.hpp>
#include <duet/version.hpp>

#include <nlohmann/json.hpp>

#include <stdexcept>

namespace duet::server {

namespace http = boost::beast::http;

namespace {

constexpr std::string_view ui_prefix = "/ui/";

response plain_json(http::status status, std::string body, const request& req)
{
    response res{status, req.version};
    res.content_type = "application/json";
    res.body = std::move(body);
    return res;
}

response healthz(server_state&, const request& req)
{
    return plain_json(http::status::ok, R"({"status":"ok"})", req);
}

response readyz(server_state& st, const request& req)
{
    if (st.draining) {
        return plain_json(http::status::service_unavailable, R"({"status":"draining"})", req);
    }
    return plain_json(http::status::ok, R"({"status":"ready"})", req);
}

// The dashboard's files allow scripts, styles, images and connections from their own origin only, and nothing
// inline: a value the page inserts can never run. No cache reuses them without asking (they carry no
// validator, so that is a new download: 39 KB once per visit), so a new server's page is seen at once.
constexpr std::string_view page_fields =
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "Referrer-Policy: no-referrer\r\n"
    "Cache-Control: no-cache\r\n";

response asset_response(const embedded_asset& a, const request& req)
{
    response res{http::status::ok, req.version};
    res.content_type = a.content_type;
    res.body.assign(reinterpret_cast<const char*>(a.bytes.data()), a.bytes.size());
    res.extra_fields = page_fields;
    return res;
}

const embedded_asset* find_asset(std::string_view name) noexcept
{
    for (const auto& a : embedded_assets()) {
        if (a.name == name) {
            return &a;
        }
    }
    return nullptr;
}

// GET /: the JSON index, or the dashboard for a client whose Accept prefers text/html (a browser). Either
// answer says that it varies with Accept, so that a cache in between keeps them apart.
response index(server_state& st, const request& req)
{
    if (preferred_index_form(req.accept) == index_form::html) {
        auto res = asset_response(*find_asset("index.html"), req);
        res.vary_accept = true;
        return res;
    }
    auto res = plain_json(http::status::ok, st.index_body, req);
    res.vary_accept = true;
    return res;
}

// /ui/NAME: one of the dashboard's files; the router has matched the path to an endpoint made for it.
response ui_file(server_state& st, const request& req)
{
    const endpoint* ep = st.routes.find(req.target);
    return asset_response(*find_asset(std::string_view{ep->path}.substr(ui_prefix.size())), req);
}

response stats(server_state& st, const request& req)
{
    auto doc = stats_json(st, std::chrono::steady_clock::now());
    return plain_json(http::status::ok, json_text(doc), req);
}

response metrics(server_state& st, const request& req)
{
    response res{http::status::ok, req.version};
    res.content_type = "text/plain; version=0.0.4; charset=utf-8";
    res.body = metrics_text(st);
    return res;
}

// The header of an event stream: no Content-Length, the body runs until the connection closes. The session
// writes the events. A GET reserves a subscriber slot here, so that the bound holds exactly.
response stats_stream(server_state& st, const request& req)
{
    auto limit = static_cast<std::uint64_t>(st.cfg.stats.max_stream_subscribers);
    if (req.method == http::verb::get && st.stats.stream_subscribers >= limit) {
        const http_error e{.status = http::status::service_unavailable,
                           .code = "too_many_subscribers",
                           .message = "/stats/stream has as many subscribers as it allows (config key "
                                      "stats.max_stream_subscribers)",
                           .limit = static_cast<std::int64_t>(limit),
                           .retry_after_s = 5};
        auto res = plain_json(e.status, e.body(), req);
        res.retry_after_s = e.retry_after_s;
        return res;
    }
    if (req.method == http::verb::get) {
        ++st.stats.stream_subscribers;
    }
    response res{http::status::ok, req.version};
    res.content_type = "text/event-stream";
    res.event_stream = true;
    res.keep_alive = false; // the stream ends with the connection
    return res;
}

param_spec mode_param(bool splittable)
{
    std::vector<std::string> choices{"pool", "inline"};
    std::string doc = "pool: run on a worker thread while the I/O thread serves others (parallelism across "
                      "requests); inline: run on the I/O thread and stall every connection meanwhile";
    if (splittable) {
        choices.emplace_back("split");
        doc += "; split: cut the work into `parts` jobs that run on the pool at once (parallelism within one "
               "request)";
    }
    return param_spec{.name = "mode", .fallback = 0, .choices = std::move(choices), .doc = std::move(doc)};
}

param_spec parts_param(const duet::limits_config& lim, unsigned workers)
{
    return param_spec{.name = "parts",
                      .min = 1,
                      .max = lim.max_parts,
                      .fallback = std::min<std::int64_t>(workers, lim.max_parts),
                      .unit = "parts",
                      .doc =
                          "with mode=split: how many jobs to cut the work into (default: the pool's workers)",
                      .limit_key = "limits.max_parts"};
}

// mode for the I/O endpoints: the event loop (the default), or the classic thread-per-request way.
param_spec io_mode_param(std::string loop_doc)
{
    return param_spec{.name = "mode",
                      .fallback = 0,
                      .choices = {"loop", "threads"},
                      .doc =
                          std::move(loop_doc) +
                          "; threads: a thread of the blocking pool (io.blocking_threads) blocks in it, so "
                          "at most that many overlap and the rest queue"};
}

} // namespace

std::vector<endpoint> make_endpoints(const duet::config& cfg, unsigned workers, std::uint64_t file_bytes)
{
    const auto& lim = cfg.limits;
    param_spec sleep_ms{.name = "ms",
                        .min = 0,
                        .max = lim.max_sleep_ms,
                        .unit = "ms",
                        .doc = "how long to wait",
                        .limit_key = "limits.max_sleep_ms"};
    std::vector<endpoint> eps;
    eps.push_back({.path = "/",
                   .model = "none",
                   .demonstrates = "this index: every endpoint, its parameters and limits; a browser (Accept "
                                   "preferring text/html) gets the live dashboard instead",
                   .plain = index});
    eps.push_back({.path = "/healthz",
                   .model = "none",
                   .demonstrates = "liveness: 200 while the process serves (the cheapest request)",
                   .plain = healthz});
    eps.push_back({.path = "/readyz",
                   .model = "none",
                   .demonstrates = "readiness: 200 while serving, 503 while draining",
                   .plain = readyz});
    eps.push_back({.path = "/stats",
                   .model = "none",
                   .demonstrates =
                       "the whole picture: latency percentiles per endpoint, event-loop lag, pool, "
                       "connections, CPU per core and per thread",
                   .plain = stats});
    eps.push_back({.path = "/stats/stream",
                   .model = "none",
                   .demonstrates = "the /stats snapshot as server-sent events, one per interval (curl -N)",
                   .plain = stats_stream});
    eps.push_back({.path = "/metrics",
                   .model = "none",
                   .demonstrates = "Prometheus text exposition format 0.0.4",
                   .plain = metrics});
    eps.push_back({.path = "/trace",
                   .model = "none",
                   .demonstrates =
                       "the timeline of the last ms, as Perfetto and chrome://tracing open it: each "
                       "request's slices on duet-io, its waits, its jobs on the workers",
                   .params = {param_spec{.name = "ms",
                                         .min = 1,
                                         .max = lim.max_trace_ms,
                                         .unit = "ms",
                                         .doc = "how far back the timeline goes",
                                         .limit_key = "limits.max_trace_ms"}},
                   .handler = trace_timeline});
    eps.push_back({.path = "/io/sleep",
                   .model = "event-loop or blocking-thread",
                   .demonstrates =
                       "concurrency: one timer wait (a stand-in for a database call); thousands "
                       "overlap on one thread and cost no CPU while waiting. mode=threads waits on a "
                       "blocking thread instead, as a thread-per-request server does",
                   .params = {sleep_ms, io_mode_param("loop: a timer on the I/O thread's event loop")},
                   .handler = io_sleep});
    eps.push_back({.path = "/io/fanout",
                   .model = "event-loop",
                   .demonstrates = "concurrency within one request: n waits of ms each run at once, so the "
                                   "request takes about ms, not n x ms",
                   .params = {param_spec{.name = "n",
                                         .min = 1,
                                         .max = lim.max_fanout,
                                         .doc = "how many concurrent waits",
                                         .limit_key = "limits.max_fanout"},
                              sleep_ms},
                   .handler = io_fanout});
    eps.push_back({.path = "/io/call",
                   .model = "event-loop or blocking-thread",
                   .demonstrates = "real network I/O: n HTTP calls at once to the configured upstream "
                                   "(upstream.url), each asking it to wait ms, over a pool of keep-alive "
                                   "connections; the request takes about ms, not n x ms",
                   .params = {param_spec{.name = "n",
                                         .min = 1,
                                         .max = lim.max_calls,
                                         .fallback = 1,
                                         .unit = "calls",
                                         .doc = "how many calls to make at once",
                                         .limit_key = "limits.max_calls"},
                              param_spec{.name = "ms",
                                         .min = 0,
                                         .max = lim.max_sleep_ms,
                                         .fallback = 0,
                                         .unit = "ms",
                                         .doc = "how long the upstream waits before it answers each call",
                                         .limit_key = "limits.max_sleep_ms"},
                              io_mode_param("loop: the calls are coroutines on the I/O thread, on pooled "
                                            "connections (upstream.max_connections)")},
                   .handler = io_call});
    const auto file_kb = file_bytes > 0 ? static_cast<std::int64_t>(file_bytes / 1024) : lim.max_file_kb;
    const auto kb_max = std::max<std::int64_t>(std::min(lim.max_file_kb, file_kb), 1);
    // A 400 names the key that bounds kb here: the limit, or the data file's size when that is smaller.
    const char* kb_key = file_kb >= lim.max_file_kb ? "limits.max_file_kb"
                         : cfg.io.file_path.empty() ? "io.file_size_mb"
                                                    : "io.file_path";
    eps.push_back(
        {.path = "/io/file",
         .model = "io_uring or blocking-thread",
         .demonstrates = "real file I/O: reads kb KiB at a random offset of the data file "
                         "(io.file_path) and returns its FNV-1a checksum; through io_uring on the "
                         "event loop where the kernel allows it, else on a blocking thread",
         .params = {param_spec{.name = "kb",
                               .min = 1,
                               .max = kb_max,
                               .fallback = std::min<std::int64_t>(64, kb_max),
                               .unit = "KiB",
                               .doc = "how much to read (at most limits.max_file_kb and the file's size)",
                               .limit_key = kb_key},
                    io_mode_param("loop: io_uring on the I/O thread (the start-up line and /stats say "
                                  "whether this server has it; without it, the blocking threads)")},
         .handler = io_file});
    eps.push_back({.path = "/cpu/primes",
                   .model = "worker-pool, inline or split",
                   .demonstrates = "parallelism: counts primes <= n by trial division on a worker thread (or "
                                   "inline on the I/O thread, blocking it; or split into parts of equal work "
                                   "that run on the pool at once)",
                   .params = {param_spec{.name = "n",
                                         .min = 0,
                                         .max = lim.max_primes_n,
                                         .doc = "count the primes up to n",
                                         .limit_key = "limits.max_primes_n"},
                              mode_param(true), parts_param(lim, workers)},
                   .handler = cpu_primes});
    eps.push_back({.path = "/cpu/fib",
                   .model = "worker-pool or inline",
                   .demonstrates =
                       "parallelism: naive recursive Fibonacci, exponential CPU and no memory, on a "
                       "worker thread (or inline, blocking the I/O thread)",
                   .params = {param_spec{.name = "n",
                                         .min = 0,
                                         .max = lim.max_fib_n,
                                         .doc = "compute F(n); each step costs about 1.6x the one before",
                                         .limit_key = "limits.max_fib_n"},
                              mode_param(false)},
                   .handler = cpu_fib});
    eps.push_back(
        {.path = "/cpu/mandelbrot",
         .model = "worker-pool, inline or split",
         .demonstrates =
             "parallelism: renders a size x size Mandelbrot image; split deals its rows out to parts "
             "that run on the pool at once. format=pgm returns the image",
         .params = {param_spec{.name = "size",
                               .min = 1,
                               .max = lim.max_mandelbrot_size,
                               .unit = "pixels",
                               .doc = "width and height of the image",
                               .limit_key = "limits.max_mandelbrot_size"},
                    param_spec{.name = "iter",
                               .min = 1,
                               .max = lim.max_mandelbrot_iter,
                               .fallback = std::min<std::int64_t>(500, lim.max_mandelbrot_iter),
                               .unit = "iterations",
                               .doc = "most iterations per point before it counts as in the set",
                               .limit_key = "limits.max_mandelbrot_iter"},
                    mode_param(true), parts_param(lim, workers),
                    param_spec{.name = "format",
                               .fallback = 0,
                               .choices = {"json", "pgm"},
                               .doc = "json: the result and report; pgm: the image itself (binary PGM), the "
                                      "figures in Server-Timing"}},
         .handler = cpu_mandelbrot});
    if (find_asset("index.html") == nullptr) {
        throw std::logic_error{
            "the dashboard's index.html is not among the embedded files (server/CMakeLists.txt)"};
    }
    for (const auto& a : embedded_assets()) {
        if (a.name != "index.html") { // the page itself is GET /'s
            eps.push_back({.path = std::string{ui_prefix} + std::string{a.name},
                           .model = "none",
                           .demonstrates = "a file of the dashboard, compiled into the server",
                           .plain = ui_file});
        }
    }
    return eps;
}

std::string make_index(const router& routes)
{
    nlohmann::ordered_json eps = nlohmann::ordered_json::array();
    for (const auto& e : routes.endpoints()) {
        nlohmann::ordered_json params = nlohmann::ordered_json::array();
        for (const auto& p : e.params) {
            nlohmann::ordered_json j = {
                {"name", p.name}, {"required", !p.fallback.has_value()}, {"doc", p.doc}};
            if (p.is_choice()) {
                j["type"] = "choice";
                j["choices"] = p.choices;
                if (p.fallback) {
                    j["default"] = p.choices.at(static_cast<std::size_t>(*p.fallback));
                }
            } else {
                j["type"] = "integer";
                j["min"] = p.min;
                j["max"] = p.max;
                if (p.fallback) {
                    j["default"] = *p.fallback;
                }
                if (!p.unit.empty()) {
                    j["unit"] = p.unit;
                }
                if (!p.limit_key.empty()) {
                    j["max_config_key"] = p.limit_key;
                }
            }
            params.push_back(std::move(j));
        }
        eps.push_back({{"path", e.path},
                       {"methods", {"GET", "HEAD"}},
                       {"model", e.model},
                       {"demonstrates", e.demonstrates},
                       {"params", std::move(params)}});
    }
    nlohmann::ordered_json index = {
        {"name", "duet"},
        {"version", duet::version},
        {"about", "one I/O thread serves every connection (concurrency); CPU work runs on a worker pool "
                  "(parallelism). Every /io and /cpu response carries a report of how it ran."},
        {"endpoints", std::move(eps)},
    };
    return index.dump(2);
}

} // namespace duet::server
