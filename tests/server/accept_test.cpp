// Content negotiation on GET /: what real clients send, and the weights and wildcards of RFC 9110 §12.5.1.
#include <duet/server/accept.hpp>

#include <gtest/gtest.h>

namespace {

using duet::server::index_form;
using duet::server::preferred_index_form;

TEST(Accept, BrowsersGetThePage)
{
    // Chromium's and Firefox's navigation requests, as sent.
    EXPECT_EQ(
        preferred_index_form("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
                             "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"),
        index_form::html);
    EXPECT_EQ(preferred_index_form("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
              index_form::html);
}

TEST(Accept, ScriptsAndToolsKeepTheIndex)
{
    EXPECT_EQ(preferred_index_form(""), index_form::json);    // no Accept at all
    EXPECT_EQ(preferred_index_form("*/*"), index_form::json); // curl, wget, wrk: a tie
    EXPECT_EQ(preferred_index_form("application/json"), index_form::json);
    EXPECT_EQ(preferred_index_form("application/json, text/html"), index_form::json); // a tie again
    EXPECT_EQ(preferred_index_form("text/html;q=0.5, application/json"), index_form::json);
}

TEST(Accept, TheMostSpecificRangeGivesTheWeight)
{
    EXPECT_EQ(preferred_index_form("text/*;q=0.9, */*;q=0.1"), index_form::html);
    EXPECT_EQ(preferred_index_form("text/*, text/html;q=0.1, application/*;q=0.5"), index_form::json);
    EXPECT_EQ(preferred_index_form("TEXT/HTML, application/json;q=0.9"), index_form::html);
}

TEST(Accept, ARangeWithABadWeightIsIgnored)
{
    EXPECT_EQ(preferred_index_form("text/html;q=2, application/json;q=0.1"), index_form::json);
    EXPECT_EQ(preferred_index_form("text/html;q=0.1234"), index_form::json);
    EXPECT_EQ(preferred_index_form("text/html;q=1.001"), index_form::json);
    EXPECT_EQ(preferred_index_form("text/html;q=, */*;q=0.1"), index_form::json);
    EXPECT_EQ(preferred_index_form("text/html;q=1.000"), index_form::html);
    EXPECT_EQ(preferred_index_form("text/html;Q=0.7, */*;q=0.2"), index_form::html);
    // A point with no digits after it is a qvalue too (RFC 9110 12.4.2: 0*3DIGIT).
    EXPECT_EQ(preferred_index_form("text/html;q=1., application/json;q=0."), index_form::html);
    EXPECT_EQ(preferred_index_form("text/html;q=0., application/json;q=1."), index_form::json);
}

TEST(Accept, GarbageIsTheIndex)
{
    EXPECT_EQ(preferred_index_form("html"), index_form::json);
    EXPECT_EQ(preferred_index_form(",,, ;;;, /, */html"), index_form::json);
    EXPECT_EQ(preferred_index_form(std::string(10000, ',')), index_form::json);
}

} // namespace
