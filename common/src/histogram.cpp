// The log-linear histogram: bucket arithmetic, percentiles, merging, and the ring of slots behind a windowed
// one.
#include <duet/histogram.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <stdexcept>

namespace duet {

namespace {
constexpr std::uint64_t half = histogram::linear_limit / 2; // 64 buckets per power of two
}

histogram::histogram() : counts_{std::make_unique<std::array<std::uint64_t, bucket_count>>()} {}

histogram::histogram(const histogram& other)
    : counts_{std::make_unique<std::array<std::uint64_t, bucket_count>>(*other.counts_)},
      count_{other.count_}, min_{other.min_}, max_{other.max_}, overflow_{other.overflow_}, sum_{other.sum_}
{}

histogram& histogram::operator=(const histogram& other)
{
    if (this != &other) {
        *this = histogram{other};
    }
    return *this;
}

std::size_t histogram::bucket_of(std::uint64_t value) noexcept
{
    value = std::min(value, max_trackable);
    if (value < linear_limit) {
        return static_cast<std::size_t>(value);
    }
    // k: how far the value is shifted so that its top bits land in [64, 128).
    auto k = static_cast<unsigned>(std::bit_width(value)) - (sub_bucket_bits + 1);
    auto sub = value >> k;
    return static_cast<std::size_t>(linear_limit + (k - 1) * half + (sub - half));
}

std::uint64_t histogram::bucket_lowest(std::size_t index) noexcept
{
    if (index < linear_limit) {
        return index;
    }
    auto j = index - linear_limit;
    auto k = j / half + 1;
    auto sub = half + j % half;
    return sub << k;
}

std::uint64_t histogram::bucket_highest(std::size_t index) noexcept
{
    if (index < linear_limit) {
        return index;
    }
    auto k = (index - linear_limit) / half + 1;
    return bucket_lowest(index) + (std::uint64_t{1} << k) - 1;
}

void histogram::record_n(std::uint64_t value, std::uint64_t n) noexcept
{
    if (n == 0) {
        return;
    }
    if (value > max_trackable) {
        overflow_ += n;
    }
    (*counts_)[bucket_of(value)] += n;
    min_ = count_ == 0 ? value : std::min(min_, value);
    max_ = std::max(max_, value);
    count_ += n;
    sum_ += static_cast<double>(value) * static_cast<double>(n);
}

void histogram::merge(const histogram& other) noexcept
{
    if (other.count_ == 0) {
        return;
    }
    for (std::size_t i = 0; i < bucket_count; ++i) {
        (*counts_)[i] += (*other.counts_)[i];
    }
    min_ = count_ == 0 ? other.min_ : std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
    count_ += other.count_;
    overflow_ += other.overflow_;
    sum_ += other.sum_;
}

void histogram::reset() noexcept
{
    counts_->fill(0);
    count_ = min_ = max_ = overflow_ = 0;
    sum_ = 0;
}

std::uint64_t histogram::percentile(double p) const noexcept
{
    if (count_ == 0) {
        return 0;
    }
    if (p <= 0) {
        return min_;
    }
    if (p >= 100) {
        return max_;
    }
    // Nearest rank: the smallest value with at least p% of the values at or below it.
    auto rank = static_cast<std::uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_)));
    rank = std::clamp<std::uint64_t>(rank, 1, count_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < bucket_count; ++i) {
        seen += (*counts_)[i];
        if (seen >= rank) {
            auto lo = bucket_lowest(i);
            auto mid = lo + (bucket_highest(i) - lo) / 2;
            return std::clamp(mid, min_, max_);
        }
    }
    return max_;
}

double histogram::stdev() const noexcept
{
    if (count_ < 2) {
        return 0.0;
    }
    const double m = mean();
    double squares = 0;
    for (std::size_t i = 0; i < bucket_count; ++i) {
        if (auto n = (*counts_)[i]; n != 0) {
            auto lo = bucket_lowest(i);
            double mid = static_cast<double>(std::clamp(lo + (bucket_highest(i) - lo) / 2, min_, max_));
            squares += static_cast<double>(n) * (mid - m) * (mid - m);
        }
    }
    return std::sqrt(squares / static_cast<double>(count_));
}

std::uint64_t histogram::count_at_or_below(std::uint64_t v) const noexcept
{
    std::uint64_t n = 0;
    for (std::size_t i = 0; i < bucket_count; ++i) {
        auto lo = bucket_lowest(i);
        if (lo + (bucket_highest(i) - lo) / 2 > v) {
            break;
        }
        n += (*counts_)[i];
    }
    return n;
}

nlohmann::json histogram::to_json(const char* unit) const
{
    nlohmann::json buckets = nlohmann::json::array();
    for (std::size_t i = 0; i < bucket_count; ++i) {
        if ((*counts_)[i] != 0) {
            buckets.push_back({bucket_lowest(i), (*counts_)[i]});
        }
    }
    return {{"unit", unit},
            {"count", count_},
            {"min", min()},
            {"max", max_},
            {"sum", sum_},
            {"overflow", overflow_},
            {"buckets", std::move(buckets)}};
}

histogram histogram::from_json(const nlohmann::json& j)
{
    histogram h;
    std::uint64_t total = 0;
    for (const auto& b : j.at("buckets")) {
        auto lowest = b.at(0).get<std::uint64_t>();
        auto n = b.at(1).get<std::uint64_t>();
        if (lowest > max_trackable) {
            throw std::invalid_argument{"histogram bucket beyond the trackable range"};
        }
        (*h.counts_)[bucket_of(lowest)] += n;
        total += n;
    }
    h.count_ = j.at("count").get<std::uint64_t>();
    if (h.count_ != total) {
        throw std::invalid_argument{"histogram count does not match its buckets"};
    }
    h.min_ = j.at("min").get<std::uint64_t>();
    h.max_ = j.at("max").get<std::uint64_t>();
    h.sum_ = j.at("sum").get<double>();
    h.overflow_ = j.value("overflow", std::uint64_t{0});
    return h;
}

bool operator==(const histogram& a, const histogram& b) noexcept
{
    return a.count_ == b.count_ && a.min() == b.min() && a.max_ == b.max_ && a.overflow_ == b.overflow_ &&
           a.sum_ == b.sum_ && *a.counts_ == *b.counts_;
}

windowed_histogram::windowed_histogram(std::chrono::milliseconds window)
    : slot_{std::max(std::chrono::milliseconds{1}, window / static_cast<int>(slots))}
{
    ring_epoch_.fill(-1);
}

std::int64_t windowed_histogram::epoch_of(std::chrono::steady_clock::time_point t) const noexcept
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()) / slot_;
}

void windowed_histogram::record(std::uint64_t value, std::chrono::steady_clock::time_point now) noexcept
{
    total_.record(value);
    auto epoch = epoch_of(now);
    auto i = static_cast<std::size_t>(epoch % static_cast<std::int64_t>(slots));
    if (ring_epoch_[i] != epoch) {
        // The slot still holds an older period: it is out of the window now.
        ring_[i].reset();
        ring_epoch_[i] = epoch;
    }
    ring_[i].record(value);
}

histogram windowed_histogram::recent(std::chrono::steady_clock::time_point now) const
{
    histogram h;
    merge_recent_into(h, now);
    return h;
}

void windowed_histogram::merge_recent_into(histogram& out,
                                           std::chrono::steady_clock::time_point now) const noexcept
{
    auto epoch = epoch_of(now);
    for (std::size_t i = 0; i < slots; ++i) {
        if (ring_epoch_[i] > epoch - static_cast<std::int64_t>(slots) && ring_epoch_[i] <= epoch) {
            out.merge(ring_[i]);
        }
    }
}

} // namespace duet
