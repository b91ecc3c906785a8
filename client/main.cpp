// duet-load: the command line; the engine and the results live in duet::client_core.
#include <duet/client/engine.hpp>
#include <duet/client/experiment.hpp>
#include <duet/client/local_server.hpp>
#include <duet/client/options.hpp>
#include <duet/client/results.hpp>
#include <duet/client/trace_fetch.hpp>
#include <duet/version.hpp>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

namespace {

// Exit codes: 0 success, 1 the run completed with errors above --max-error-rate, 2 bad usage or the target
// unreachable at the start.
constexpr int exit_errors = 1;
constexpr int exit_usage = 2;

duet::client::load_engine* running_engine = nullptr;

extern "C" void on_interrupt(int)
{
    // Only an atomic store: the coordinator notices within 50 ms and stops the run, which still reports.
    if (running_engine != nullptr) {
        running_engine->stop();
    }
}

std::string read_file(const std::string& path)
{
    std::ifstream in{path, std::ios::binary};
    if (!in) {
        throw duet::client::usage_error{"--body-file " + path + ": cannot be read"};
    }
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

std::string time_text(double us)
{
    return us < 1000 ? fmt::format("{:.0f}us", us) : fmt::format("{:.2f}ms", us / 1000);
}

// duet-load experiment NAME [URL]: each experiment's table and verdict; exit 0 when every claim held (or
// could not be shown here, which it says), 1 when one did not, 2 when one could not run.
// As many descriptors as the hard limit allows (the soft limit is often 1,024).
void raise_descriptor_limit()
{
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
    }
}

struct experiment_outputs
{
    std::string json;
    std::string report;
    std::string svg_dir;
};

int experiment_main(const std::string& name, const std::string& url_text, std::string server,
                    const experiment_outputs& out, bool quick, bool quiet, const char* argv0)
{
    namespace dc = duet::client;
    dc::experiment_options o;
    o.quick = quick;
    try {
        if (!url_text.empty()) {
            o.target = dc::parse_url(url_text);
        }
    } catch (const dc::usage_error& e) {
        std::cerr << "duet-load experiment: " << e.what() << "\n";
        return exit_usage;
    }
    if (server.empty() && !o.target) {
        server = dc::server_beside(argv0).value_or("");
    }
    o.server_binary = server;
    if (!quiet) {
        o.log = [](const std::string& line) { std::cerr << "  " << line << "\n"; };
    }
    std::vector<std::string> names;
    if (name == "all") {
        names = dc::experiment_names();
    } else {
        names.push_back(name);
    }
    raise_descriptor_limit(); // concurrency opens 1,000 connections from one thread
    nlohmann::ordered_json all = nlohmann::ordered_json::array();
    std::vector<dc::experiment_result> results;
    int code = 0;
    for (const auto& n : names) {
        try {
            auto r = dc::run_experiment(n, o);
            std::cout << r.table() << "\n" << std::flush;
            if (r.outcome == dc::experiment_result::verdict::failed) {
                code = std::max(code, exit_errors);
            }
            all.push_back(r.to_json());
            results.push_back(std::move(r));
        } catch (const std::exception& e) {
            // Nothing is claimed from an experiment that could not run; those before it are written below.
            std::cerr << "duet-load experiment " << n << ": " << e.what() << "\n";
            code = exit_usage;
            break;
        }
    }
    const nlohmann::ordered_json about = {{"duet_load", duet::version}, {"quick", quick}};
    const auto write = [](const std::string& path, const std::string& text) {
        if (path == "-") {
            std::cout << text;
            return true;
        }
        std::ofstream f{path};
        f << text;
        f.close();
        if (!f) {
            std::cerr << "duet-load experiment: " << path << ": cannot be written\n";
        }
        return static_cast<bool>(f);
    };
    bool written = true;
    if (!out.json.empty()) {
        auto doc = about;
        doc["experiments"] = all;
        written = write(out.json, doc.dump(2) + "\n") && written;
    }
    if (!out.svg_dir.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(out.svg_dir, ec);
        for (const auto& r : results) {
            written = write(out.svg_dir + "/" + r.name + ".svg", dc::chart_svg(r) + "\n") && written;
        }
    }
    if (!out.report.empty()) {
        written = write(out.report, dc::report_html(results, about)) && written;
    }
    return written ? code : exit_usage;
}

int merge_main(const std::vector<std::string>& files, const std::string& json_out, bool quiet, bool latency)
{
    std::vector<nlohmann::json> runs;
    for (const auto& f : files) {
        std::ifstream in{f};
        if (!in) {
            std::cerr << "duet-load merge: " << f << ": cannot be read\n";
            return exit_usage;
        }
        auto doc = nlohmann::json::parse(in, nullptr, false);
        if (doc.is_discarded()) {
            std::cerr << "duet-load merge: " << f << ": not JSON\n";
            return exit_usage;
        }
        runs.push_back(std::move(doc));
    }
    nlohmann::ordered_json merged;
    try {
        merged = duet::client::merge_json(runs);
    } catch (const std::exception& e) {
        std::cerr << "duet-load merge: " << e.what() << "\n";
        return exit_usage;
    }
    if (!quiet) {
        std::cout << duet::client::text_summary(merged, latency);
    }
    if (json_out == "-") {
        std::cout << merged.dump(2) << "\n";
    } else if (!json_out.empty()) {
        std::ofstream{json_out} << merged.dump(2) << "\n";
    }
    return 0;
}

} // namespace

int main(int argc, char** argv)
{
    duet::client::run_options o;
    CLI::App app{"duet-load " + std::string{duet::version} +
                 ": an HTTP load generator, closed loop by default, open loop with --rate (latency from each "
                 "request's intended send time)."};
    app.set_version_flag("-V,--version", "duet-load " + std::string{duet::version});
    std::string url_text;
    std::string duration_text;
    std::string timeout_text = "2s";
    std::string connect_timeout_text = "2s";
    std::string warmup_text = "0s";
    std::vector<std::string> header_texts;
    std::string body_file;
    std::string json_out;
    std::string trace_out;
    bool latency = false;
    bool quiet = false;
    bool no_server_view = false;
    std::optional<double> max_error_rate;
    std::optional<std::uint64_t> requests;
    std::optional<double> rate;

    app.add_option("url", url_text, "http://host[:port]/path")->required(false);
    app.add_option("-c,--connections", o.connections, "connections to keep open, in all")
        ->capture_default_str();
    app.add_option("-t,--threads", o.threads, "client threads, each with its own event loop")
        ->capture_default_str();
    app.add_option("-d,--duration", duration_text, "how long to measure: 10s, 1m, 500ms (default 10s)");
    app.add_option("-n,--requests", requests, "send this many requests in all, instead of --duration");
    app.add_option("-R,--rate", rate, "requests per second in all: open loop, constant rate");
    app.add_option("--timeout", timeout_text, "deadline for each response")->capture_default_str();
    app.add_option("--connect-timeout", connect_timeout_text, "deadline for each connect")
        ->capture_default_str();
    // One value per -H, so that `-H 'Name: value' URL` leaves the URL alone, as in wrk.
    app.add_option("-H,--header", header_texts, "'Name: value', repeatable")->allow_extra_args(false);
    app.add_option("-m,--method", o.method, "HTTP method")->capture_default_str();
    app.add_option("--body", o.body, "request body");
    app.add_option("--body-file", body_file, "request body from a file");
    app.add_option("--warmup", warmup_text, "time before the measurement, excluded from the results")
        ->capture_default_str();
    app.add_flag("--latency", latency, "print the full percentile table");
    app.add_option("--json", json_out, "write the result as JSON to FILE ('-' or no FILE: standard output)")
        ->expected(0, 1)
        ->default_str("-");
    app.add_option(
        "--trace", trace_out,
        "after the run, write the server's timeline of it to FILE (duet's /trace, in the Trace Event "
        "Format: open it in https://ui.perfetto.dev or chrome://tracing)");
    app.add_flag("-q,--quiet", quiet, "no progress line and no text summary");
    app.add_option(
           "--max-error-rate", max_error_rate,
           "fraction of requests (0-1) that may fail (socket errors and non-2xx/3xx) before exit code 1; "
           "default: any connect error")
        ->check(CLI::Range(0.0, 1.0));
    app.add_flag("--no-server-view", no_server_view, "do not read duet's reports in the responses");

    auto* merge = app.add_subcommand("merge", "merge the --json results of runs made at the same time");
    std::vector<std::string> merge_files;
    std::string merge_json_out;
    merge->fallthrough(); // -q and --latency belong to the main command and apply here too
    merge->add_option("files", merge_files, "result files")->required();
    merge->add_option("--json", merge_json_out,
                      "write the merged result as JSON to FILE ('-': standard output)");

    auto* experiment = app.add_subcommand(
        "experiment", "prove a claim about concurrency or parallelism with measured numbers: concurrency, "
                      "threads, parallelism, split, blocking, single-core, or all");
    std::string experiment_name;
    std::string experiment_url;
    std::string experiment_json;
    std::string experiment_server;
    bool experiment_quick = false;
    experiment->add_option("name", experiment_name, "which experiment, or all")->required();
    experiment->add_option(
        "url", experiment_url,
        "a running duet-server (http://host:port); none: start one beside duet-load for each");
    experiment->add_option("--json", experiment_json,
                           "write every point and the environment as JSON to FILE");
    std::string experiment_report;
    std::string experiment_svg_dir;
    experiment->add_option("--report", experiment_report,
                           "write a self-contained HTML page with a chart per experiment to FILE");
    experiment->add_option("--svg-dir", experiment_svg_dir, "write each experiment's chart as DIR/NAME.svg");
    experiment->add_option("--server", experiment_server,
                           "the duet-server to start (default: beside duet-load)");
    experiment->add_flag("-q,--quiet", quiet, "no progress lines (the tables and verdicts still print)");
    experiment->add_flag("--quick", experiment_quick, "fewer, shorter points (about 10 s for all)");

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::cerr << "duet-load: " << e.what() << " (see --help)\n";
        return exit_usage;
    }
    if (*merge) {
        return merge_main(merge_files, merge_json_out, quiet, latency);
    }
    if (*experiment) {
        return experiment_main(experiment_name, experiment_url, experiment_server,
                               {experiment_json, experiment_report, experiment_svg_dir}, experiment_quick,
                               quiet, argv[0]);
    }

    try {
        if (url_text.empty()) {
            throw duet::client::usage_error{
                "a URL is required, e.g. duet-load -c 64 -d 10s http://127.0.0.1:8080/healthz"};
        }
        o.target = duet::client::parse_url(url_text);
        o.requests = requests;
        o.rate = rate;
        if (!duration_text.empty()) {
            o.duration = duet::client::parse_duration(duration_text);
        } else if (!requests) {
            o.duration = std::chrono::seconds{10};
        }
        o.timeout = duet::client::parse_duration(timeout_text);
        o.connect_timeout = duet::client::parse_duration(connect_timeout_text);
        o.warmup = duet::client::parse_duration(warmup_text);
        for (const auto& h : header_texts) {
            auto colon = h.find(':');
            if (colon == std::string::npos) {
                throw duet::client::usage_error{"invalid header '" + h + "' (write -H 'Name: value')"};
            }
            auto value = h.substr(colon + 1);
            value.erase(0, value.find_first_not_of(' '));
            o.headers.emplace_back(h.substr(0, colon), value);
        }
        if (!body_file.empty()) {
            o.body = read_file(body_file);
        }
        o.server_view = !no_server_view;
        o.validate();
    } catch (const duet::client::usage_error& e) {
        std::cerr << "duet-load: " << e.what() << "\n";
        return exit_usage;
    }

    std::optional<duet::client::load_engine> engine;
    try {
        engine.emplace(o);
        engine->preflight();
    } catch (const duet::client::unreachable_error& e) {
        std::cerr << "duet-load: " << e.what() << "\n";
        return exit_usage;
    }

    bool progress_line = !quiet && isatty(STDERR_FILENO) == 1;
    if (!quiet) {
        std::cout << "Running "
                  << (o.duration ? fmt::format("{:.3g}s", std::chrono::duration<double>(*o.duration).count())
                                 : fmt::format("{} requests", *o.requests))
                  << " test @ " << o.target.to_string() << "\n";
        std::cout << "  " << o.threads << " threads and " << o.connections << " connections"
                  << (o.rate ? fmt::format(", {:.0f} requests/s in all (open loop)", *o.rate) : "") << "\n"
                  << std::flush;
    }
    running_engine = &*engine;
    std::signal(SIGINT, on_interrupt);
    std::signal(SIGTERM, on_interrupt);
    auto result = engine->run([&](const duet::client::progress& p) {
        if (!progress_line) {
            return;
        }
        if (p.elapsed_s < 0) {
            fmt::print(stderr, "\r  warming up, {:.0f}s to go          ", -p.elapsed_s);
            return;
        }
        auto total = p.total_s > 0 ? fmt::format("/{:.0f}s", p.total_s) : "";
        fmt::print(stderr, "\r  [{:.0f}s{}] {:.0f} req/s  p99 {}  {} requests  {} errors     ", p.elapsed_s,
                   total, p.last_second_rps, time_text(p.p99_us), p.requests, p.errors);
    });
    running_engine = nullptr;
    if (progress_line) {
        fmt::print(stderr, "\r{:80}\r", "");
    }

    auto doc = duet::client::to_json(result, o);
    if (!quiet) {
        std::cout << duet::client::text_summary(doc, latency);
    }
    if (app.count("--json") > 0) {
        if (json_out.empty() || json_out == "-") {
            std::cout << doc.dump(2) << "\n";
        } else {
            std::ofstream out{json_out};
            if (!out) {
                std::cerr << "duet-load: cannot write " << json_out << "\n";
                return exit_usage;
            }
            out << doc.dump(2) << "\n";
        }
    }

    if (!trace_out.empty()) {
        // The run's measured window, and the moments since it ended; the server cuts it to what it keeps.
        const auto window =
            std::chrono::ceil<std::chrono::milliseconds>(result.elapsed) + std::chrono::milliseconds{250};
        try {
            const auto trace = duet::client::fetch_trace(o.target, window, std::chrono::milliseconds{30000});
            std::ofstream out{trace_out, std::ios::binary};
            if (!out || !(out << trace.json)) {
                std::cerr << "duet-load: cannot write " << trace_out << "\n";
                return exit_usage;
            }
            if (!quiet) {
                std::cout << "Trace of the last " << trace.window_ms << " ms written to " << trace_out
                          << " (open it in https://ui.perfetto.dev or chrome://tracing)\n";
            }
        } catch (const duet::client::trace_error& e) {
            std::cerr << "duet-load: --trace: " << e.what() << "\n";
            return exit_errors;
        }
    }

    const auto& c = result.counts;
    auto failed = c.errors.total() + c.non_2xx_3xx();
    auto attempted = c.requests + c.errors.total();
    if (max_error_rate) {
        double rate_seen = attempted > 0 ? static_cast<double>(failed) / static_cast<double>(attempted) : 0.0;
        return rate_seen > *max_error_rate ? exit_errors : 0;
    }
    return c.errors.connect > 0 ? exit_errors : 0;
}
