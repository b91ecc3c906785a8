// The Date field's value: the exact IMF-fixdate text, and the cached value of the current second.
#include <duet/server/http_date.hpp>

#include <gtest/gtest.h>

#include <ctime>

namespace {

TEST(HttpDate, FormatsImfFixdate)
{
    EXPECT_EQ(duet::server::format_http_date(784111777),
              "Sun, 06 Nov 1994 08:49:37 GMT"); // RFC 9110's example
    EXPECT_EQ(duet::server::format_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    EXPECT_EQ(duet::server::format_http_date(951782400), "Tue, 29 Feb 2000 00:00:00 GMT");
    EXPECT_EQ(duet::server::format_http_date(1798761599), "Thu, 31 Dec 2026 23:59:59 GMT");
}

TEST(HttpDate, NowIsTheCurrentSecond)
{
    const auto before = std::time(nullptr);
    const std::string now{duet::server::http_date_now()};
    const auto after = std::time(nullptr);
    // The coarse clock may be a tick behind time(): either second is right.
    EXPECT_TRUE(now == duet::server::format_http_date(before) ||
                now == duet::server::format_http_date(after) ||
                now == duet::server::format_http_date(before - 1))
        << now;
}

} // namespace
