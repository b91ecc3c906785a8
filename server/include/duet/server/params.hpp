#pragma once
// Strict query parameters: each endpoint's specs, the parser that checks every value against its limit, and
// the validated values.

#include <duet/server/http_error.hpp>

#include <boost/system/result.hpp>
#include <nlohmann/json_fwd.hpp>

#include <array>
#include <bitset>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace duet::server {

/// One query parameter an endpoint accepts. Integer parameters are decimal, non-negative, within [min, max];
/// choice parameters (choices non-empty) take one of a fixed set of words and are stored as its index.
struct param_spec
{
    std::string name{};
    std::int64_t min = 0;
    std::int64_t max = 0;
    std::optional<std::int64_t> fallback{}; ///< the default when absent; none means the parameter is required
    std::vector<std::string> choices{};
    std::string unit{};      ///< "ms", … or empty
    std::string doc{};       ///< one line
    std::string limit_key{}; ///< the config key that sets max, if one does

    bool is_choice() const { return !choices.empty(); }
};

/// The validated parameters of one request, in the order of the endpoint's specs.
class param_values
{
public:
    static constexpr std::size_t max_params = 8;

    explicit param_values(std::span<const param_spec> specs) : specs_{specs} {}

    /// The value of an integer parameter, or the index of a choice. name must be one of the specs.
    std::int64_t get(std::string_view name) const;

    /// The word chosen for a choice parameter.
    std::string_view choice(std::string_view name) const;

    /// True when the request gave the parameter, false when its default was used.
    bool given(std::string_view name) const;

    void set(std::size_t index, std::int64_t value, bool given)
    {
        values_.at(index) = value;
        given_.set(index, given);
    }

    /// {"ms": 300, "mode": "pool"}: what the report echoes back.
    nlohmann::ordered_json to_json() const;
    /// The same as JSON text, appended to out (the report's path: no document is built).
    void append_json(std::string& out) const;

private:
    std::size_t index_of(std::string_view name) const;

    std::span<const param_spec> specs_;
    std::array<std::int64_t, max_params> values_{};
    std::bitset<max_params> given_;
};

/// Parses a query string ("ms=300&mode=pool", without '?') strictly against specs: unknown, duplicated,
/// missing, malformed and out-of-range parameters are 400 errors naming the parameter and its limit; nothing
/// is clamped.
boost::system::result<param_values, http_error> parse_params(std::string_view query,
                                                             std::span<const param_spec> specs);

/// Decodes %XX escapes and '+' (as a space, per application/x-www-form-urlencoded); nullopt if malformed.
std::optional<std::string> percent_decode(std::string_view text);

/// Lets boost::system::result<T, http_error>::value() throw when it holds an error.
[[noreturn]] void throw_exception_from_error(const http_error& e, const boost::source_location& loc);

} // namespace duet::server
