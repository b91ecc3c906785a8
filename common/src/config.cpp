// The configuration table's parsing and validation: JSON file, environment, --set, each value against its
// key's limits.
#include <duet/config.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <sstream>
#include <type_traits>

namespace duet {
namespace {

[[noreturn]] void fail(std::string_view key, std::string_view source, const std::string& what)
{
    std::string msg{key};
    msg += ": ";
    msg += what;
    if (!source.empty()) {
        msg += " (from ";
        msg += source;
        msg += ')';
    }
    throw config_error{msg};
}

// 'text', for a message. Appended piece by piece: GCC 12 at -O3 reports a false -Wrestrict for
// "'" + std::string{text} (operator+ on a literal and a temporary string).
std::string in_quotes(std::string_view text)
{
    std::string out;
    out.reserve(text.size() + 2);
    out += '\'';
    out += text;
    out += '\'';
    return out;
}

void check_range(const key_info& info, std::int64_t v, std::string_view source)
{
    if (v < info.min || v > info.max) {
        fail(info.name, source,
             std::to_string(v) + " is out of range [" + std::to_string(info.min) + ", " +
                 std::to_string(info.max) + "]");
    }
}

void check_choice(const key_info& info, const std::string& v, std::string_view source)
{
    if (info.choices.empty()) {
        if (v.empty() && !info.may_be_empty) {
            fail(info.name, source, "must not be empty");
        }
        return;
    }
    if (std::find(info.choices.begin(), info.choices.end(), v) == info.choices.end()) {
        std::string allowed;
        for (auto c : info.choices) {
            allowed += allowed.empty() ? "" : ", ";
            allowed += c;
        }
        fail(info.name, source, in_quotes(v) + " is not one of: " + allowed);
    }
}

// Strict decimal integer: optional '-', digits only, nothing else (no '+', spaces, hex or exponent).
std::int64_t parse_integer(const key_info& info, std::string_view text, std::string_view source)
{
    std::int64_t v = 0;
    const auto* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, v);
    if (text.empty() || ptr != end || ec == std::errc::invalid_argument) {
        fail(info.name, source, in_quotes(text) + " is not an integer");
    }
    if (ec == std::errc::result_out_of_range) {
        fail(info.name, source,
             in_quotes(text) + " is out of range [" + std::to_string(info.min) + ", " +
                 std::to_string(info.max) + "]");
    }
    return v;
}

bool parse_bool(const key_info& info, std::string_view text, std::string_view source)
{
    if (text == "true" || text == "1" || text == "yes" || text == "on") {
        return true;
    }
    if (text == "false" || text == "0" || text == "no" || text == "off") {
        return false;
    }
    fail(info.name, source, in_quotes(text) + " is not a boolean (true/false)");
}

template <typename T>
void assign_text(const key_info& info, T& member, std::string_view text, std::string_view source)
{
    if constexpr (std::is_same_v<T, std::int64_t>) {
        auto v = parse_integer(info, text, source);
        check_range(info, v, source);
        member = v;
    } else if constexpr (std::is_same_v<T, bool>) {
        member = parse_bool(info, text, source);
    } else {
        std::string v{text};
        check_choice(info, v, source);
        member = std::move(v);
    }
}

template <typename T>
void assign_json(const key_info& info, T& member, const nlohmann::json& value, std::string_view source)
{
    if constexpr (std::is_same_v<T, std::int64_t>) {
        if (!value.is_number_integer()) {
            fail(info.name, source, "must be an integer, not " + value.dump());
        }
        if (value.is_number_unsigned() && value.get<std::uint64_t>() > static_cast<std::uint64_t>(info.max)) {
            fail(info.name, source, value.dump() + " is out of range");
        }
        auto v = value.get<std::int64_t>();
        check_range(info, v, source);
        member = v;
    } else if constexpr (std::is_same_v<T, bool>) {
        if (!value.is_boolean()) {
            fail(info.name, source, "must be true or false, not " + value.dump());
        }
        member = value.get<bool>();
    } else {
        if (!value.is_string()) {
            fail(info.name, source, "must be a string, not " + value.dump());
        }
        auto v = value.get<std::string>();
        check_choice(info, v, source);
        member = std::move(v);
    }
}

// "server.port" -> ("server", "port"): every key has exactly one dot.
std::pair<std::string_view, std::string_view> split_key(std::string_view key)
{
    auto dot = key.find('.');
    return {key.substr(0, dot), key.substr(dot + 1)};
}

} // namespace

std::string env_name(std::string_view key)
{
    std::string name = "DUET_";
    for (char ch : key) {
        name += ch == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    }
    return name;
}

void set_key(config& c, std::string_view key, std::string_view text, std::string_view source)
{
    bool found = false;
    for_each_key(c, [&](const key_info& info, auto& member) {
        if (info.name == key) {
            assign_text(info, member, text, source);
            found = true;
        }
    });
    if (!found) {
        fail(key, source, "unknown configuration key");
    }
}

void apply_json(config& c, const nlohmann::json& doc, std::string_view source)
{
    if (!doc.is_object()) {
        throw config_error{std::string{source} + ": the configuration must be a JSON object"};
    }
    // Reject unknown sections and keys first, so a typo is an error rather than a silently ignored setting.
    for (const auto& [section, body] : doc.items()) {
        if (!body.is_object()) {
            fail(section, source, "must be an object of keys");
        }
        for (const auto& [name, value] : body.items()) {
            std::string dotted = section + "." + name;
            bool known = false;
            for_each_key(c, [&](const key_info& info, auto&) { known = known || info.name == dotted; });
            if (!known) {
                fail(dotted, source, "unknown configuration key");
            }
        }
    }
    for_each_key(c, [&](const key_info& info, auto& member) {
        auto [section, name] = split_key(info.name);
        auto s = doc.find(std::string{section});
        if (s == doc.end()) {
            return;
        }
        auto v = s->find(std::string{name});
        if (v != s->end()) {
            assign_json(info, member, *v, source);
        }
    });
}

void apply_file(config& c, const std::filesystem::path& file)
{
    std::ifstream in{file};
    if (!in) {
        throw config_error{"config file " + file.string() + ": cannot be opened"};
    }
    nlohmann::json doc;
    try {
        doc = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/true, /*ignore_comments=*/true);
    } catch (const nlohmann::json::parse_error& e) {
        throw config_error{"config file " + file.string() + ": " + e.what()};
    }
    apply_json(c, doc, file.string());
}

void apply_env(config& c, const getenv_fn& getenv)
{
    for_each_key(c, [&](const key_info& info, auto& member) {
        auto name = env_name(info.name);
        if (const char* value = getenv(name.c_str())) {
            assign_text(info, member, value, name);
        }
    });
}

config load_config(const config_sources& sources)
{
    config c;
    if (sources.file) {
        apply_file(c, *sources.file);
    }
    if (sources.getenv) {
        apply_env(c, sources.getenv);
    }
    for (const auto& [key, value] : sources.flags) {
        set_key(c, key, value, "command line");
    }
    return c;
}

nlohmann::ordered_json to_json(const config& c)
{
    nlohmann::ordered_json doc = nlohmann::ordered_json::object();
    for_each_key(c, [&](const key_info& info, const auto& member) {
        auto [section, name] = split_key(info.name);
        doc[std::string{section}][std::string{name}] = member;
    });
    return doc;
}

} // namespace duet
