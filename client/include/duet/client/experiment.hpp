#pragma once
// duet-load experiment: each claim about concurrency and parallelism, measured by varying one thing against a
// duet-server, with a table, a one-sentence verdict and the points for a chart.

#include <duet/client/options.hpp>

#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace duet::client {

/// The experiment cannot run: an unknown name, a target that is not duet, a server that refuses. One line.
class experiment_error : public std::runtime_error
{
public:
    using std::runtime_error::runtime_error;
};

/// One measured point: the varied quantity and the figures measured there, by name.
struct experiment_point
{
    double x = 0;
    std::string label{}; ///< x as the table and the chart write it ("1,000", "pool")
    std::vector<std::pair<std::string, double>> values{};

    double at(std::string_view name) const;
};

/// What an experiment found.
struct experiment_result
{
    enum class verdict {
        held,          ///< the claim held, with the numbers in `conclusion`
        failed,        ///< the claim did not hold on this machine
        not_applicable ///< this environment cannot show it (e.g. one usable CPU); `conclusion` says why
    };

    std::string name{};
    std::string claim{};  ///< the claim, in one line
    std::string varied{}; ///< the x axis: "concurrent requests", "workers", "parts", ...
    std::string figure{}; ///< the y axis: the value charted, one of each point's values
    std::string unit{};   ///< the figure's unit
    std::string ideal{};  ///< the ideal line's name, also one of each point's values ("" when none)
    std::vector<experiment_point> points{};
    verdict outcome = verdict::not_applicable;
    std::string conclusion{};             ///< one sentence with the measured numbers
    nlohmann::ordered_json environment{}; ///< the server's CPUs, workers, version, as its /stats says

    nlohmann::ordered_json to_json() const;
    std::string table() const; ///< the points as a text table, then the conclusion
};

struct experiment_options
{
    std::optional<url> target;                   ///< a running duet; none: start one per experiment
    std::string server_binary;                   ///< the duet-server to start when there is no target
    bool quick = false;                          ///< fewer, shorter points (tests, a first look)
    std::function<void(const std::string&)> log; ///< progress lines, one per point
};

/// The experiments, in the order `all` runs them.
const std::vector<std::string>& experiment_names();

/// Runs one experiment by name; throws experiment_error when it cannot run at all.
experiment_result run_experiment(std::string_view name, const experiment_options& options);

/// One experiment as an SVG chart: the figure against the varied quantity, the ideal dashed beside it (bars
/// when the varied thing is a choice, not a number).
std::string chart_svg(const experiment_result& result);

/// A self-contained HTML page (no script, nothing fetched): each experiment's chart, table and verdict.
std::string report_html(const std::vector<experiment_result>& results,
                        const nlohmann::ordered_json& environment);

} // namespace duet::client
