// duet-server: the command line and the configuration, then server.run(). Nothing else lives here.
#include <duet/config.hpp>
#include <duet/server/server.hpp>
#include <duet/version.hpp>

#include <CLI/CLI.hpp>
#include <boost/system/system_error.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

// Exit codes: 0 clean exit (including after a drain), 1 failure at run time, 2 bad usage or configuration.
constexpr int exit_runtime_error = 1;
constexpr int exit_usage = 2;

template <typename T>
std::string default_text(const T& value)
{
    if constexpr (std::is_same_v<T, bool>) {
        return value ? "true" : "false";
    } else if constexpr (std::is_same_v<T, std::string>) {
        return value;
    } else {
        return std::to_string(value);
    }
}

// Every configuration key with its default, unit, range and environment variable, for --help.
std::string keys_help()
{
    std::ostringstream out;
    out << "Configuration keys (precedence: defaults < --config file < DUET_* environment < flags;\n"
           "any key can be set with --set KEY=VALUE):\n";
    duet::config defaults;
    duet::for_each_key(defaults, [&](const duet::key_info& info, const auto& value) {
        out << "  " << info.name << " = " << default_text(value);
        if (!info.unit.empty()) {
            out << " " << info.unit;
        }
        if (info.min != info.max) {
            out << "  [" << info.min << ", " << info.max << "]";
        }
        out << "  (" << duet::env_name(info.name) << ")\n      " << info.description << "\n";
    });
    out << "\nExit codes: 0 clean exit or drained after SIGINT/SIGTERM, 1 runtime failure (e.g. the port is "
           "taken), 2 bad usage or configuration.";
    return out.str();
}

} // namespace

int main(int argc, char** argv)
{
    const duet::config defaults;
    CLI::App app{
        "duet-server " + std::string{duet::version} +
        ": one I/O thread for concurrency, a worker pool for parallelism. GET / lists the endpoints."};
    app.set_version_flag("-V,--version", "duet-server " + std::string{duet::version});
    app.footer(keys_help());

    std::string config_file;
    std::vector<std::pair<std::string, std::string>> flags;
    auto flag = [&](const char* name, const char* type, const char* key, const std::string& def,
                    const char* what) {
        return app
            .add_option_function<std::string>(
                name, [&flags, key](const std::string& v) { flags.emplace_back(key, v); },
                std::string{what} + " (key " + key + ")")
            ->type_name(type)
            ->default_str(def);
    };
    app.add_option("-c,--config", config_file, "JSON config file, comments allowed (env DUET_CONFIG)")
        ->type_name("FILE")
        ->default_str("none: built-in defaults")
        ->check(CLI::ExistingFile);
    flag("-b,--bind", "ADDR", "server.bind", defaults.server.bind, "address to listen on");
    flag("-p,--port", "PORT", "server.port", std::to_string(defaults.server.port),
         "port to listen on; 0 picks one");
    flag("-w,--workers", "N", "pool.workers", std::to_string(defaults.pool.workers),
         "worker threads; 0 means the CPUs this process may use");
    flag("--queue-limit", "N", "pool.queue_limit", std::to_string(defaults.pool.queue_limit),
         "CPU jobs that may wait for a worker before 503");
    flag("--drain-timeout-ms", "MS", "server.drain_timeout_ms",
         std::to_string(defaults.server.drain_timeout_ms),
         "how long in-flight requests may finish after SIGTERM");
    flag("-l,--log-level", "LEVEL", "log.level", defaults.log.level,
         "trace, debug, info, warn, error, critical or off");
    app.add_flag_callback(
           "--access-log", [&flags] { flags.emplace_back("log.access", "true"); },
           "write one access-log line per request (key log.access)")
        ->default_str("false");
    app.add_option_function<std::vector<std::string>>(
           "--set",
           [&flags](const std::vector<std::string>& items) {
               for (const auto& item : items) {
                   auto eq = item.find('=');
                   flags.emplace_back(item.substr(0, eq), eq == std::string::npos ? "" : item.substr(eq + 1));
               }
           },
           "set any configuration key, e.g. --set limits.max_fib_n=40 (repeatable)")
        ->type_name("KEY=VALUE")
        ->default_str("none");
    bool print_config = false;
    app.add_flag("--print-config", print_config, "print the effective configuration as JSON and exit")
        ->default_str("false");

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::cerr << "duet-server: " << e.what() << " (see --help)\n";
        return exit_usage;
    }

    duet::config_sources sources;
    if (!config_file.empty()) {
        sources.file = config_file;
    } else if (const char* env_file = std::getenv("DUET_CONFIG"); env_file != nullptr && *env_file != '\0') {
        sources.file = env_file;
    }
    sources.getenv = [](const char* name) { return std::getenv(name); };
    sources.flags = std::move(flags);

    duet::config cfg;
    try {
        cfg = duet::load_config(sources);
    } catch (const duet::config_error& e) {
        std::cerr << "duet-server: invalid configuration: " << e.what() << "\n";
        return exit_usage;
    }
    if (print_config) {
        std::cout << duet::to_json(cfg).dump(2) << "\n";
        return 0;
    }

    spdlog::set_level(spdlog::level::from_str(cfg.log.level));
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e [%^%l%$] %v");
    try {
        duet::server::server srv{cfg};
        srv.run();
    } catch (const duet::config_error& e) {
        std::cerr << "duet-server: invalid configuration: " << e.what() << "\n";
        return exit_usage;
    } catch (const boost::system::system_error& e) {
        spdlog::critical("cannot listen on {}:{}: {}", cfg.server.bind, cfg.server.port, e.code().message());
        return exit_runtime_error;
    } catch (const std::exception& e) {
        spdlog::critical("fatal: {}", e.what());
        return exit_runtime_error;
    }
    return 0;
}
