// The configuration: defaults match config/duet.json, every source (file, environment, --set) is checked
// against its key's limits.
#include <duet/config.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>

namespace {

namespace fs = std::filesystem;

const fs::path shipped_config = fs::path{DUET_SOURCE_DIR} / "config" / "duet.json";

// A temporary config file, removed at the end of the test.
class TempFile
{
public:
    explicit TempFile(const std::string& text)
        : path_{fs::temp_directory_path() / ("duet-config-test-" + std::to_string(::getpid()) + "-" +
                                             std::to_string(counter_++) + ".json")}
    {
        std::ofstream{path_} << text;
    }
    ~TempFile() { fs::remove(path_); }
    const fs::path& path() const { return path_; }

private:
    static inline int counter_ = 0;
    fs::path path_;
};

// An environment that exists only inside the test.
duet::getenv_fn fake_env(std::map<std::string, std::string> vars)
{
    return [vars = std::move(vars)](const char* name) -> const char* {
        auto it = vars.find(name);
        return it == vars.end() ? nullptr : it->second.c_str();
    };
}

std::string error_of(const std::function<void()>& f)
{
    try {
        f();
    } catch (const duet::config_error& e) {
        return e.what();
    }
    return "no error";
}

TEST(Config, ShippedFileHoldsExactlyTheBuiltInDefaults)
{
    duet::config from_file;
    duet::apply_file(from_file, shipped_config);
    EXPECT_EQ(duet::to_json(from_file), duet::to_json(duet::config{}));
}

TEST(Config, ShippedFileSetsEveryKeyExplicitly)
{
    std::ifstream in{shipped_config};
    auto doc = nlohmann::json::parse(in, nullptr, true, /*ignore_comments=*/true);
    duet::config c;
    int keys = 0;
    duet::for_each_key(c, [&](const duet::key_info& info, auto&) {
        ++keys;
        auto name = std::string{info.name};
        auto dot = name.find('.');
        EXPECT_TRUE(doc.contains(name.substr(0, dot)) &&
                    doc[name.substr(0, dot)].contains(name.substr(dot + 1)))
            << info.name << " is missing from config/duet.json";
    });
    EXPECT_GE(keys, 15);
}

TEST(Config, EnvironmentNamesAreDerivedMechanically)
{
    EXPECT_EQ(duet::env_name("pool.queue_limit"), "DUET_POOL_QUEUE_LIMIT");
    EXPECT_EQ(duet::env_name("server.port"), "DUET_SERVER_PORT");
}

TEST(Config, PrecedenceIsDefaultsThenFileThenEnvironmentThenFlags)
{
    TempFile file{R"({"server": {"port": 1000, "bind": "127.0.0.2"}, "pool": {"workers": 3}})"};
    duet::config_sources src;
    src.file = file.path();
    EXPECT_EQ(duet::load_config(src).server.port, 1000);

    src.getenv = fake_env({{"DUET_SERVER_PORT", "2000"}, {"DUET_POOL_WORKERS", "5"}});
    auto with_env = duet::load_config(src);
    EXPECT_EQ(with_env.server.port, 2000);
    EXPECT_EQ(with_env.pool.workers, 5);
    EXPECT_EQ(with_env.server.bind, "127.0.0.2"); // the file still applies where env says nothing

    src.flags = {{"server.port", "3000"}};
    auto with_flags = duet::load_config(src);
    EXPECT_EQ(with_flags.server.port, 3000);
    EXPECT_EQ(with_flags.pool.workers, 5);
    EXPECT_EQ(with_flags.limits.max_sleep_ms, duet::limits_config{}.max_sleep_ms); // untouched: the default
}

TEST(Config, CommentsAreAllowedInFiles)
{
    TempFile file{"// a comment\n{\"log\": {/* inline */ \"level\": \"debug\"}}\n"};
    duet::config c;
    duet::apply_file(c, file.path());
    EXPECT_EQ(c.log.level, "debug");
}

TEST(Config, UnknownKeysAreErrorsNamingTheKey)
{
    TempFile file{R"({"server": {"prot": 8080}})"};
    duet::config c;
    EXPECT_NE(error_of([&] { duet::apply_file(c, file.path()); }).find("server.prot"), std::string::npos);
    EXPECT_NE(error_of([&] { duet::set_key(c, "pool.size", "4", "command line"); }).find("pool.size"),
              std::string::npos);
}

TEST(Config, OutOfRangeAndMistypedValuesAreErrorsNamingKeyAndSource)
{
    duet::config c;
    auto msg = error_of([&] { duet::apply_env(c, fake_env({{"DUET_SERVER_PORT", "70000"}})); });
    EXPECT_NE(msg.find("server.port"), std::string::npos) << msg;
    EXPECT_NE(msg.find("DUET_SERVER_PORT"), std::string::npos) << msg;
    EXPECT_NE(msg.find("65535"), std::string::npos) << msg;

    for (const char* bad : {"abc", "1e3", "0x10", "", "8080 ", "+80", "99999999999999999999"}) {
        EXPECT_NE(error_of([&] { duet::set_key(c, "server.port", bad, "test"); }), "no error") << bad;
    }
    EXPECT_NE(error_of([&] { duet::set_key(c, "log.level", "loud", "test"); }).find("log.level"),
              std::string::npos);
    EXPECT_NE(error_of([&] { duet::set_key(c, "log.access", "maybe", "test"); }), "no error");

    TempFile file{R"({"pool": {"workers": "4"}})"};
    EXPECT_NE(error_of([&] { duet::apply_file(c, file.path()); }).find("pool.workers"), std::string::npos);
    TempFile negative{R"({"pool": {"queue_limit": 0}})"};
    EXPECT_NE(error_of([&] { duet::apply_file(c, negative.path()); }).find("pool.queue_limit"),
              std::string::npos);
}

TEST(Config, ValidTextValuesAreApplied)
{
    duet::config c;
    duet::set_key(c, "log.access", "true", "test");
    duet::set_key(c, "limits.max_fib_n", "30", "test");
    duet::set_key(c, "server.bind", "::1", "test");
    EXPECT_TRUE(c.log.access);
    EXPECT_EQ(c.limits.max_fib_n, 30);
    EXPECT_EQ(c.server.bind, "::1");
}

TEST(Config, RealIoKeysKeepTheirChoicesAndBounds)
{
    duet::config c;
    duet::set_key(c, "io.file_model", "threads", "test");
    EXPECT_EQ(c.io.file_model, "threads");
    EXPECT_NE(error_of([&] { duet::set_key(c, "io.file_model", "uring", "test"); }).find("io.file_model"),
              std::string::npos);
    // io.file_path may be empty (the server then writes its own file); upstream.url may not.
    duet::set_key(c, "io.file_path", "/var/data/x", "test");
    duet::set_key(c, "io.file_path", "", "test");
    EXPECT_EQ(c.io.file_path, "");
    EXPECT_NE(error_of([&] { duet::set_key(c, "upstream.url", "", "test"); }).find("upstream.url"),
              std::string::npos);
    for (const auto& [key, bad] : std::map<std::string, std::string>{{"io.blocking_threads", "0"},
                                                                     {"io.blocking_queue_limit", "0"},
                                                                     {"io.file_size_mb", "0"},
                                                                     {"upstream.max_connections", "0"},
                                                                     {"upstream.queue_limit", "-1"},
                                                                     {"upstream.timeout_ms", "0"},
                                                                     {"upstream.max_response_bytes", "1023"},
                                                                     {"limits.max_calls", "0"},
                                                                     {"limits.max_file_kb", "0"}}) {
        EXPECT_NE(error_of([&] { duet::set_key(c, key, bad, "test"); }).find(key), std::string::npos) << key;
    }
    // A queue of 0 is allowed: every call beyond the open connections is refused at once.
    duet::set_key(c, "upstream.queue_limit", "0", "test");
    EXPECT_EQ(c.upstream.queue_limit, 0);
}

TEST(Config, BrokenJsonAndMissingFilesAreErrors)
{
    TempFile broken{R"({"server": {"port": })"};
    duet::config c;
    EXPECT_NE(error_of([&] { duet::apply_file(c, broken.path()); }), "no error");
    EXPECT_NE(error_of([&] { duet::apply_file(c, "/nonexistent/duet.json"); }).find("cannot be opened"),
              std::string::npos);
}

} // namespace
