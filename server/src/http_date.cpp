// The Date field's value: formatted by hand (no locale, no allocation) and cached per thread for a second.
#include <duet/server/http_date.hpp>

#include <algorithm>
#include <array>
#include <time.h>

namespace duet::server {

namespace {

constexpr std::size_t date_length = 29; // "Sun, 06 Nov 1994 08:49:37 GMT"

void two_digits(char* at, int n) noexcept
{
    at[0] = static_cast<char>('0' + n / 10 % 10);
    at[1] = static_cast<char>('0' + n % 10);
}

void format_into(std::array<char, date_length>& out, std::time_t t) noexcept
{
    static constexpr std::string_view days = "SunMonTueWedThuFriSat";
    static constexpr std::string_view months = "JanFebMarAprMayJunJulAugSepOctNovDec";
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char* p = out.data();
    days.copy(p, 3, static_cast<std::size_t>(tm.tm_wday) * 3);
    p[3] = ',';
    p[4] = ' ';
    two_digits(p + 5, tm.tm_mday);
    p[7] = ' ';
    months.copy(p + 8, 3, static_cast<std::size_t>(tm.tm_mon) * 3);
    p[11] = ' ';
    const int year = tm.tm_year + 1900; // four digits until the year 10000
    two_digits(p + 12, year / 100);
    two_digits(p + 14, year % 100);
    p[16] = ' ';
    two_digits(p + 17, tm.tm_hour);
    p[19] = ':';
    two_digits(p + 20, tm.tm_min);
    p[22] = ':';
    two_digits(p + 23, tm.tm_sec);
    std::string_view{" GMT"}.copy(p + 25, 4);
}

} // namespace

std::string format_http_date(std::time_t t)
{
    std::array<char, date_length> out{};
    format_into(out, t);
    return {out.data(), out.size()};
}

std::string_view date_field_now() noexcept
{
    // Per thread, so that the I/O thread needs no lock; any thread that writes responses (tests) has its own.
    static constexpr std::string_view name = "Date: ";
    thread_local std::time_t cached_second = -1;
    thread_local std::array<char, name.size() + date_length + 2> line = [] {
        std::array<char, name.size() + date_length + 2> l{};
        name.copy(l.data(), name.size());
        l[l.size() - 2] = '\r';
        l[l.size() - 1] = '\n';
        return l;
    }();
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME_COARSE, &now);
    if (now.tv_sec != cached_second) {
        std::array<char, date_length> date{};
        format_into(date, now.tv_sec);
        std::copy(date.begin(), date.end(), line.begin() + name.size());
        cached_second = now.tv_sec;
    }
    return {line.data(), line.size()};
}

std::string_view http_date_now() noexcept
{
    constexpr std::size_t name = 6; // "Date: "
    return date_field_now().substr(name, date_length);
}

} // namespace duet::server
