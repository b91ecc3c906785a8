#pragma once
// Content negotiation on Accept (RFC 9110 §12.5.1): whether a client prefers GET /'s page to its JSON index.

#include <string_view>

namespace duet::server {

/// The representations GET / offers.
enum class index_form {
    json, ///< the index of endpoints, for curl and scripts
    html, ///< the dashboard, for a browser
};

/// The form of GET / that an Accept field value prefers: html only when text/html gets a higher weight than
/// application/json, each weighed by its most specific matching range (text/html over text/* over */*). A
/// tie, an absent field and an unparseable one are json, so that curl and scripts keep getting the index. A
/// range with a malformed weight is ignored, as RFC 9110 lets a recipient do.
index_form preferred_index_form(std::string_view accept) noexcept;

} // namespace duet::server
