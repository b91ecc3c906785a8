#pragma once
// A log-linear histogram of non-negative integers (nanoseconds here): fixed memory, O(1) record, mergeable;
// and a windowed one that also answers for the last few seconds.

#include <nlohmann/json_fwd.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace duet {

/// A log-linear histogram of non-negative integers in the spirit of HdrHistogram: fixed memory (19 KiB), O(1)
/// record, mergeable, percentile queries. duet records nanoseconds.
///
/// Layout: values below 128 have a bucket each; above, every power of two [2^k, 2^(k+1)) is split into 64
/// equal buckets. A value is reported as the midpoint of its bucket, so its relative error is at most 1/128
/// (0.78%) from 128 up to max_trackable (2^43 - 1 ns, about 2.4 hours); below 128 it is exact. Values above
/// max_trackable are counted in the top bucket and in overflow(); min() and max() stay exact.
///
/// Not thread-safe: each histogram belongs to one thread; merge copies to aggregate.
class histogram
{
public:
    static constexpr int sub_bucket_bits = 6;                            ///< 64 buckets per power of two
    static constexpr std::uint64_t linear_limit = 2U << sub_bucket_bits; ///< 128: exact below this
    static constexpr int max_bits = 43;
    static constexpr std::uint64_t max_trackable = (std::uint64_t{1} << max_bits) - 1;
    static constexpr std::size_t bucket_count =
        linear_limit + static_cast<std::size_t>(max_bits - sub_bucket_bits - 1) * (linear_limit / 2);

    histogram();
    histogram(const histogram& other);
    histogram& operator=(const histogram& other);
    histogram(histogram&&) noexcept = default;
    histogram& operator=(histogram&&) noexcept = default;
    ~histogram() = default;

    /// Records one value. No allocation, no lock: a bucket index and three updates.
    void record(std::uint64_t value) noexcept { record_n(value, 1); }
    void record_n(std::uint64_t value, std::uint64_t n) noexcept;
    void record(std::chrono::nanoseconds d) noexcept
    {
        record(d.count() > 0 ? static_cast<std::uint64_t>(d.count()) : 0);
    }

    /// Adds every value of other to this one.
    void merge(const histogram& other) noexcept;
    void reset() noexcept;

    std::uint64_t count() const noexcept { return count_; }
    std::uint64_t min() const noexcept { return count_ == 0 ? 0 : min_; }
    std::uint64_t max() const noexcept { return max_; }
    double sum() const noexcept { return sum_; }
    double mean() const noexcept { return count_ == 0 ? 0.0 : sum_ / static_cast<double>(count_); }
    std::uint64_t overflow() const noexcept { return overflow_; }

    /// Standard deviation, from the bucket midpoints: within the buckets' 0.78% of the exact value.
    double stdev() const noexcept;

    /// The value below or at which p percent of the recorded values lie (nearest rank), 0 <= p <= 100; 0 when
    /// empty. p = 100 is max() and p = 0 is min(), exactly; otherwise the bucket midpoint, clamped to them.
    std::uint64_t percentile(double p) const noexcept;

    /// Values recorded that are <= v: exact for v below 128; above, a bucket counts when its midpoint is <=
    /// v. What Prometheus "le" buckets are made of.
    std::uint64_t count_at_or_below(std::uint64_t v) const noexcept;

    /// The bucket a value falls in, and the range of a bucket: [lowest, highest].
    static std::size_t bucket_of(std::uint64_t value) noexcept;
    static std::uint64_t bucket_lowest(std::size_t index) noexcept;
    static std::uint64_t bucket_highest(std::size_t index) noexcept;

    /// Serialisable form: {"unit": unit, "count", "min", "max", "sum", "overflow",
    /// "buckets": [[lowest, count], …]} with only the non-empty buckets. from_json(to_json(h)) == h.
    nlohmann::json to_json(const char* unit = "ns") const;
    static histogram from_json(const nlohmann::json& j);

    friend bool operator==(const histogram& a, const histogram& b) noexcept;

private:
    std::unique_ptr<std::array<std::uint64_t, bucket_count>> counts_;
    std::uint64_t count_ = 0;
    std::uint64_t min_ = 0;
    std::uint64_t max_ = 0;
    std::uint64_t overflow_ = 0;
    double sum_ = 0;
};

/// A histogram since start plus one over a sliding recent window, kept as 10 slots of window/10 each (fixed
/// memory; the recent window is accurate to one slot). Time is passed in, so tests control it.
/// Not thread-safe: one owner thread.
class windowed_histogram
{
public:
    static constexpr std::size_t slots = 10;

    explicit windowed_histogram(std::chrono::milliseconds window);

    void record(std::uint64_t value, std::chrono::steady_clock::time_point now) noexcept;
    void record(std::chrono::nanoseconds d, std::chrono::steady_clock::time_point now) noexcept
    {
        record(d.count() > 0 ? static_cast<std::uint64_t>(d.count()) : 0, now);
    }

    const histogram& since_start() const noexcept { return total_; }

    /// The values recorded within the last window before now (merged from the slots).
    histogram recent(std::chrono::steady_clock::time_point now) const;

    /// Adds the recent window's values to out: recent() without allocating, for callers that reuse out.
    void merge_recent_into(histogram& out, std::chrono::steady_clock::time_point now) const noexcept;

    std::chrono::milliseconds window() const noexcept { return slot_ * static_cast<int>(slots); }

private:
    std::int64_t epoch_of(std::chrono::steady_clock::time_point t) const noexcept;

    std::chrono::milliseconds slot_;
    histogram total_;
    std::array<histogram, slots> ring_;
    std::array<std::int64_t, slots> ring_epoch_{};
};

} // namespace duet
