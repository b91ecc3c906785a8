// Strict query parsing: percent-decoding, decimal integers without sign or exponent, choices, and an error
// naming the parameter and its limit for everything else.
#include <duet/server/params.hpp>
#include <duet/server/text.hpp>

#include <boost/throw_exception.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <bitset>
#include <charconv>
#include <stdexcept>

namespace duet::server {
namespace {

namespace http = boost::beast::http;

http_error param_error(std::string code, std::string message, const param_spec& spec,
                       std::optional<std::int64_t> limit)
{
    return http_error{.status = http::status::bad_request,
                      .code = std::move(code),
                      .message = std::move(message),
                      .param = spec.name,
                      .limit = limit};
}

std::string range_text(const param_spec& spec)
{
    std::string text = "an integer in [" + std::to_string(spec.min) + ", " + std::to_string(spec.max) + "]";
    if (!spec.unit.empty()) {
        text += " (" + spec.unit + ")";
    }
    if (!spec.limit_key.empty()) {
        text += "; the maximum is config key " + spec.limit_key;
    }
    return text;
}

std::string choices_text(const param_spec& spec)
{
    std::string text;
    for (const auto& c : spec.choices) {
        text += text.empty() ? "" : ", ";
        text += c;
    }
    return text;
}

boost::system::result<std::int64_t, http_error> parse_value(const param_spec& spec, std::string_view text)
{
    if (spec.is_choice()) {
        auto it = std::find(spec.choices.begin(), spec.choices.end(), text);
        if (it == spec.choices.end()) {
            return param_error("invalid_param", spec.name + " must be one of: " + choices_text(spec), spec,
                               std::nullopt);
        }
        std::int64_t index = it - spec.choices.begin();
        return index;
    }
    // Digits only: no sign, spaces, hex, exponent or fraction, so "1e3", "0x10" and " 5" are all refused.
    bool negative = !text.empty() && text.front() == '-';
    std::string_view digits = negative ? text.substr(1) : text;
    bool all_digits = !digits.empty() &&
                      std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!all_digits) {
        return param_error("invalid_param",
                           spec.name + " must be " + range_text(spec) + ", written in decimal digits", spec,
                           std::nullopt);
    }
    if (negative) {
        return param_error("out_of_range",
                           spec.name + " must be " + range_text(spec) + "; negative values are refused", spec,
                           spec.min);
    }
    std::int64_t v = 0;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    if (ec == std::errc::result_out_of_range || v > spec.max) {
        return param_error("out_of_range", spec.name + " must be " + range_text(spec), spec, spec.max);
    }
    if (v < spec.min) {
        return param_error("out_of_range", spec.name + " must be " + range_text(spec), spec, spec.min);
    }
    return v;
}

int hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

} // namespace

std::size_t param_values::index_of(std::string_view name) const
{
    for (std::size_t i = 0; i < specs_.size(); ++i) {
        if (specs_[i].name == name) {
            return i;
        }
    }
    throw std::logic_error{"no parameter named " + std::string{name}};
}

std::int64_t param_values::get(std::string_view name) const
{
    return values_.at(index_of(name));
}

bool param_values::given(std::string_view name) const
{
    return given_.test(index_of(name));
}

std::string_view param_values::choice(std::string_view name) const
{
    auto i = index_of(name);
    return specs_[i].choices.at(static_cast<std::size_t>(values_.at(i)));
}

nlohmann::ordered_json param_values::to_json() const
{
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    for (std::size_t i = 0; i < specs_.size(); ++i) {
        const auto& spec = specs_[i];
        if (spec.is_choice()) {
            j[spec.name] = spec.choices.at(static_cast<std::size_t>(values_.at(i)));
        } else {
            j[spec.name] = values_.at(i);
        }
    }
    return j;
}

void param_values::append_json(std::string& out) const
{
    // Names and choices are the endpoint table's own words (letters and underscores): nothing to escape.
    out.push_back('{');
    for (std::size_t i = 0; i < specs_.size(); ++i) {
        const auto& spec = specs_[i];
        if (i > 0) {
            out.push_back(',');
        }
        out.push_back('"');
        out += spec.name;
        out += "\":";
        if (spec.is_choice()) {
            out.push_back('"');
            out += spec.choices.at(static_cast<std::size_t>(values_.at(i)));
            out.push_back('"');
        } else {
            append_int(out, values_.at(i));
        }
    }
    out.push_back('}');
}

std::optional<std::string> percent_decode(std::string_view text)
{
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '+') {
            out += ' ';
        } else if (c == '%') {
            if (i + 2 >= text.size()) {
                return std::nullopt;
            }
            int hi = hex_digit(text[i + 1]);
            int lo = hex_digit(text[i + 2]);
            if (hi < 0 || lo < 0) {
                return std::nullopt;
            }
            out += static_cast<char>(hi * 16 + lo);
            i += 2;
        } else {
            out += c;
        }
    }
    return out;
}

boost::system::result<param_values, http_error> parse_params(std::string_view query,
                                                             std::span<const param_spec> specs)
{
    param_values values{specs};
    std::bitset<param_values::max_params> seen;
    while (!query.empty()) {
        auto amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (pair.empty()) {
            continue; // "a=1&&b=2": an empty pair carries nothing
        }
        auto eq = pair.find('=');
        auto name = percent_decode(pair.substr(0, eq));
        auto text = percent_decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1));
        if (!name || !text) {
            return http_error{
                .status = http::status::bad_request,
                .code = "bad_query",
                .message = "the query string has an invalid percent-encoding (%XX with two hex digits)"};
        }
        auto spec =
            std::find_if(specs.begin(), specs.end(), [&](const param_spec& s) { return s.name == *name; });
        if (spec == specs.end()) {
            std::string accepted;
            for (const auto& s : specs) {
                accepted += accepted.empty() ? "" : ", ";
                accepted += s.name;
            }
            return http_error{.status = http::status::bad_request,
                              .code = "unknown_param",
                              .message = "unknown parameter '" + *name + "'; this endpoint accepts: " +
                                         (accepted.empty() ? std::string{"none"} : accepted),
                              .param = *name};
        }
        auto index = static_cast<std::size_t>(spec - specs.begin());
        if (seen.test(index)) {
            return param_error("duplicate_param", spec->name + " is given more than once", *spec,
                               std::nullopt);
        }
        seen.set(index);
        auto v = parse_value(*spec, *text);
        if (!v) {
            return v.error();
        }
        values.set(index, *v, true);
    }
    for (std::size_t i = 0; i < specs.size(); ++i) {
        if (seen.test(i)) {
            continue;
        }
        const auto& spec = specs[i];
        if (!spec.fallback) {
            return param_error("missing_param",
                               spec.name + " is required: " +
                                   (spec.is_choice() ? "one of " + choices_text(spec) : range_text(spec)),
                               spec, spec.is_choice() ? std::nullopt : std::optional<std::int64_t>{spec.max});
        }
        values.set(i, *spec.fallback, false);
    }
    return values;
}

void throw_exception_from_error(const http_error& e, const boost::source_location& loc)
{
    boost::throw_exception(std::runtime_error{e.code + ": " + e.message}, loc);
}

} // namespace duet::server
