// Content negotiation on Accept: media ranges, their weights, and which of json and html weighs more.
#include <duet/server/accept.hpp>

#include <algorithm>
#include <cctype>
#include <optional>

namespace duet::server {

namespace {

std::string_view trim(std::string_view s) noexcept
{
    auto ows = [](char c) { return c == ' ' || c == '\t'; };
    while (!s.empty() && ows(s.front())) {
        s.remove_prefix(1);
    }
    while (!s.empty() && ows(s.back())) {
        s.remove_suffix(1);
    }
    return s;
}

bool iequals(std::string_view a, std::string_view b) noexcept
{
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), in thousandths; nullopt when malformed.
std::optional<int> parse_qvalue(std::string_view q) noexcept
{
    if (q.empty() || (q[0] != '0' && q[0] != '1') || q.size() > 5 || (q.size() > 1 && q[1] != '.')) {
        return std::nullopt;
    }
    int value = (q[0] - '0') * 1000;
    int scale = 100;
    for (char c : q.substr(std::min<std::size_t>(q.size(), 2))) {
        if (c < '0' || c > '9' || (q[0] == '1' && c != '0')) {
            return std::nullopt;
        }
        value += (c - '0') * scale;
        scale /= 10;
    }
    return value;
}

// How closely a range matches a media type: 3 exact, 2 type/*, 1 */*, 0 not at all.
int specificity(std::string_view type, std::string_view subtype, std::string_view want_type,
                std::string_view want_subtype) noexcept
{
    if (type == "*" && subtype == "*") {
        return 1;
    }
    if (!iequals(type, want_type)) {
        return 0;
    }
    if (subtype == "*") {
        return 2;
    }
    return iequals(subtype, want_subtype) ? 3 : 0;
}

// The weight of one media type: that of its most specific range (0 when none matches).
struct weighed
{
    int specificity = 0;
    int weight = 0;

    void offer(int s, int w) noexcept
    {
        if (s > specificity) {
            specificity = s;
            weight = w;
        }
    }
};

} // namespace

index_form preferred_index_form(std::string_view accept) noexcept
{
    weighed html;
    weighed json;
    while (!accept.empty()) {
        auto comma = accept.find(',');
        auto element = trim(accept.substr(0, comma));
        accept = comma == std::string_view::npos ? std::string_view{} : accept.substr(comma + 1);

        auto semicolon = element.find(';');
        auto range = trim(element.substr(0, semicolon));
        auto slash = range.find('/');
        if (range.empty() || slash == std::string_view::npos) {
            continue; // an empty element (allowed) or one that is not type/subtype
        }
        auto type = range.substr(0, slash);
        auto subtype = range.substr(slash + 1);
        if (type.empty() || subtype.empty() || (type == "*" && subtype != "*")) {
            continue;
        }
        int weight = 1000;
        bool malformed = false;
        auto params =
            semicolon == std::string_view::npos ? std::string_view{} : element.substr(semicolon + 1);
        while (!params.empty()) {
            auto next = params.find(';');
            auto param = trim(params.substr(0, next));
            params = next == std::string_view::npos ? std::string_view{} : params.substr(next + 1);
            if (param.size() >= 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
                auto q = parse_qvalue(param.substr(2));
                malformed = !q;
                weight = q.value_or(0);
                break; // the weight ends the media range's parameters
            }
        }
        if (malformed) {
            continue;
        }
        html.offer(specificity(type, subtype, "text", "html"), weight);
        json.offer(specificity(type, subtype, "application", "json"), weight);
    }
    return html.weight > json.weight ? index_form::html : index_form::json;
}

} // namespace duet::server
