// Strict query parsing: every malformed or out-of-range value refused with the parameter and its limit.
#include <duet/server/params.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <vector>

namespace {

using duet::server::param_spec;
using duet::server::parse_params;
using duet::server::percent_decode;

const std::vector<param_spec> specs = {
    param_spec{.name = "ms", .min = 0, .max = 60000, .unit = "ms", .limit_key = "limits.max_sleep_ms"},
    param_spec{.name = "n", .min = 1, .max = 1000, .fallback = 10},
    param_spec{.name = "mode", .fallback = 0, .choices = {"pool", "inline"}},
};

TEST(Params, ValidQueryIsParsedAndDefaultsFillTheRest)
{
    auto p = parse_params("ms=300", specs);
    ASSERT_TRUE(p) << p.error().message;
    EXPECT_EQ(p->get("ms"), 300);
    EXPECT_EQ(p->get("n"), 10);
    EXPECT_EQ(p->choice("mode"), "pool");

    p = parse_params("mode=inline&n=1000&ms=0", specs);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->get("ms"), 0);
    EXPECT_EQ(p->get("n"), 1000);
    EXPECT_EQ(p->choice("mode"), "inline");
    EXPECT_EQ(p->to_json().dump(), R"({"ms":0,"n":1000,"mode":"inline"})");
    std::string text;
    p->append_json(text);
    EXPECT_EQ(text, p->to_json().dump()) << "the report's direct writing says the same";
}

TEST(Params, LeadingZerosAndPercentEncodingAreDecimalAndDecoded)
{
    auto p = parse_params("m%73=007&&mode=%69nline", specs);
    ASSERT_TRUE(p) << p.error().message;
    EXPECT_EQ(p->get("ms"), 7);
    EXPECT_EQ(p->choice("mode"), "inline");
}

TEST(Params, MissingRequiredParameterNamesItAndItsLimit)
{
    auto p = parse_params("n=5", specs);
    ASSERT_FALSE(p);
    EXPECT_EQ(p.error().status, boost::beast::http::status::bad_request);
    EXPECT_EQ(p.error().code, "missing_param");
    EXPECT_EQ(p.error().param, "ms");
    EXPECT_EQ(p.error().limit, 60000);
}

TEST(Params, NonDecimalValuesAreInvalid)
{
    for (const char* bad : {"ms=abc", "ms=1e3", "ms=0x10", "ms=+5", "ms=%205", "ms=5%20", "ms=1.5",
                            "ms=", "ms", "ms=--1", "ms=-"}) {
        auto p = parse_params(bad, specs);
        ASSERT_FALSE(p) << bad;
        EXPECT_EQ(p.error().code, "invalid_param") << bad;
        EXPECT_EQ(p.error().param, "ms") << bad;
    }
}

TEST(Params, OutOfRangeNamesTheBoundItBroke)
{
    struct case_t
    {
        const char* query;
        std::int64_t limit;
    };
    for (auto [query, limit] :
         {case_t{"ms=60001", 60000}, case_t{"ms=99999999999999999999", 60000}, case_t{"ms=-5", 0},
          case_t{"ms=-0", 0}, case_t{"ms=1&n=0", 1}, case_t{"ms=1&n=1001", 1000}}) {
        auto p = parse_params(query, specs);
        ASSERT_FALSE(p) << query;
        EXPECT_EQ(p.error().code, "out_of_range") << query;
        EXPECT_EQ(p.error().limit, limit) << query;
        if (limit == 60000) {
            EXPECT_NE(p.error().message.find("limits.max_sleep_ms"), std::string::npos) << p.error().message;
        }
    }
    EXPECT_TRUE(parse_params("ms=60000&n=1", specs)); // the limits themselves are accepted
}

TEST(Params, UnknownDuplicateAndBadChoiceAreRefused)
{
    auto unknown = parse_params("ms=5&msec=5", specs);
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error().code, "unknown_param");
    EXPECT_EQ(unknown.error().param, "msec");
    EXPECT_NE(unknown.error().message.find("ms, n, mode"), std::string::npos);

    auto dup = parse_params("ms=5&ms=6", specs);
    ASSERT_FALSE(dup);
    EXPECT_EQ(dup.error().code, "duplicate_param");

    auto choice = parse_params("ms=5&mode=fast", specs);
    ASSERT_FALSE(choice);
    EXPECT_EQ(choice.error().code, "invalid_param");
    EXPECT_NE(choice.error().message.find("pool, inline"), std::string::npos);
}

TEST(Params, BadPercentEncodingIsRefused)
{
    for (const char* bad : {"ms=%zz", "ms=%4", "ms=5%", "%=1"}) {
        auto p = parse_params(bad, specs);
        ASSERT_FALSE(p) << bad;
        EXPECT_EQ(p.error().code, "bad_query") << bad;
    }
}

TEST(Params, PercentDecode)
{
    EXPECT_EQ(percent_decode("a%20b+c%2B"), "a b c+");
    EXPECT_EQ(percent_decode("%41%62"), "Ab");
    EXPECT_FALSE(percent_decode("%G0"));
    EXPECT_FALSE(percent_decode("abc%"));
}

TEST(Params, ErrorBodyIsTheDocumentedJson)
{
    auto p = parse_params("ms=70000", specs);
    ASSERT_FALSE(p);
    auto body = nlohmann::json::parse(p.error().body());
    EXPECT_EQ(body["error"]["status"], 400);
    EXPECT_EQ(body["error"]["code"], "out_of_range");
    EXPECT_EQ(body["error"]["param"], "ms");
    EXPECT_EQ(body["error"]["limit"], 60000);
    EXPECT_TRUE(body["error"]["message"].is_string());
}

} // namespace
