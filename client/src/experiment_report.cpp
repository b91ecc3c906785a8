// The experiments' pictures: one SVG chart per experiment (the measured figure against the varied quantity,
// the ideal dashed beside it), and a self-contained HTML page that holds them with their tables and verdicts.
#include <duet/client/experiment.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace duet::client {

namespace {

// Text for SVG and HTML: the five characters markup gives meaning to, escaped.
std::string escaped(std::string_view s)
{
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '&':
            out += "&amp;";
            break;
        case '"':
            out += "&quot;";
            break;
        case '\'':
            out += "&#39;";
            break;
        default:
            out += c;
        }
    }
    return out;
}

double nice_ceil(double v)
{
    if (!(v > 0)) {
        return 1;
    }
    const double p = std::pow(10.0, std::floor(std::log10(v)));
    for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
        if (v <= m * p) {
            return m * p;
        }
    }
    return 10 * p;
}

std::string number(double v)
{
    if (v == 0) {
        return "0";
    }
    if (std::fabs(v) >= 100) {
        return fmt::format("{:.0f}", v);
    }
    if (std::fabs(v) >= 10) {
        return fmt::format("{:.1f}", v);
    }
    return fmt::format("{:.2f}", v);
}

constexpr int width = 560;
constexpr int height = 300;
constexpr int left = 60;
constexpr int right = 20;
constexpr int top = 20;
constexpr int bottom = 50;

} // namespace

std::string chart_svg(const experiment_result& r)
{
    std::string svg = fmt::format(
        R"(<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {0} {1}" width="{0}" height="{1}" )"
        R"(font-family="system-ui, sans-serif" font-size="12"><rect width="{0}" height="{1}" fill="#fff"/>)",
        width, height);
    if (r.points.empty()) {
        return svg + "</svg>";
    }
    double ymax = 0;
    for (const auto& p : r.points) {
        ymax = std::max({ymax, p.at(r.figure), r.ideal.empty() ? 0.0 : p.at(r.ideal)});
    }
    ymax = nice_ceil(ymax * 1.05);
    const double plot_w = width - left - right;
    const double plot_h = height - top - bottom;
    const auto sy = [&](double y) { return top + plot_h - y / ymax * plot_h; };
    // Categorical x (where the work runs) as bars; numbers as a line, on a log axis when they span decades.
    const bool categorical = std::any_of(r.points.begin(), r.points.end(), [](const experiment_point& p) {
        return p.label != number(p.x) && p.label.find_first_not_of("0123456789,") != std::string::npos;
    });
    double xmin = r.points.front().x;
    double xmax = r.points.back().x;
    const bool log_x = !categorical && xmin > 0 && xmax / xmin >= 100;
    const auto sx = [&](std::size_t i, double x) {
        if (categorical || xmax == xmin) {
            return left + plot_w * (static_cast<double>(i) + 0.5) / static_cast<double>(r.points.size());
        }
        const double f = log_x ? std::log(x / xmin) / std::log(xmax / xmin) : (x - xmin) / (xmax - xmin);
        return left + 20 + f * (plot_w - 40);
    };
    for (int i = 0; i <= 5; ++i) {
        const double y = ymax * i / 5;
        svg += fmt::format(R"(<line x1="{}" x2="{}" y1="{:.1f}" y2="{:.1f}" stroke="#e3e6ea"/>)", left,
                           width - right, sy(y), sy(y));
        svg += fmt::format(R"(<text x="{}" y="{:.1f}" text-anchor="end" fill="#5d6875">{:g}</text>)",
                           left - 6, sy(y) + 4, y);
    }
    for (std::size_t i = 0; i < r.points.size(); ++i) {
        svg += fmt::format(R"(<text x="{:.1f}" y="{}" text-anchor="middle" fill="#5d6875">{}</text>)",
                           sx(i, r.points[i].x), height - bottom + 16, escaped(r.points[i].label));
    }
    svg += fmt::format(R"(<text x="{:.1f}" y="{}" text-anchor="middle" fill="#1d232b">{}</text>)",
                       left + plot_w / 2, height - 12, escaped(r.varied + (log_x ? " (log scale)" : "")));
    svg += fmt::format(
        R"svg(<text x="14" y="{:.1f}" text-anchor="middle" fill="#1d232b" transform="rotate(-90 14 {:.1f})">{}</text>)svg",
        top + plot_h / 2, top + plot_h / 2, escaped(r.figure));
    if (categorical) {
        const double bar = plot_w / static_cast<double>(r.points.size()) * 0.5;
        for (std::size_t i = 0; i < r.points.size(); ++i) {
            const double v = r.points[i].at(r.figure);
            svg +=
                fmt::format(R"(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="#3b6fd1"/>)",
                            sx(i, 0) - bar / 2, sy(v), bar, top + plot_h - sy(v));
            svg += fmt::format(R"(<text x="{:.1f}" y="{:.1f}" text-anchor="middle" fill="#1d232b">{}</text>)",
                               sx(i, 0), sy(v) - 5, number(v));
            // Each choice's own ideal (a prediction), dashed across its bar.
            if (!r.ideal.empty()) {
                const double ideal = r.points[i].at(r.ideal);
                svg +=
                    fmt::format(R"(<line x1="{:.1f}" x2="{:.1f}" y1="{:.1f}" y2="{:.1f}" stroke="#79b887" )"
                                R"(stroke-width="2" stroke-dasharray="6 4"/>)",
                                sx(i, 0) - bar / 2 - 8, sx(i, 0) + bar / 2 + 8, sy(ideal), sy(ideal));
            }
        }
        if (!r.ideal.empty()) {
            svg += fmt::format(
                R"(<rect x="{0}" y="{1}" width="20" height="10" fill="#3b6fd1"/>)"
                R"(<text x="{2}" y="{3}" fill="#1d232b">measured</text>)"
                R"(<line x1="{4}" x2="{5}" y1="{6}" y2="{6}" stroke="#79b887" stroke-width="2" stroke-dasharray="6 4"/>)"
                R"(<text x="{7}" y="{3}" fill="#1d232b">{8}</text>)",
                left + 10, top + 1, left + 36, top + 10, left + 110, left + 130, top + 6, left + 136,
                escaped(r.ideal));
        }
        return svg + "</svg>";
    }
    const auto polyline = [&](const std::string& name, const char* color, const char* dash) {
        std::string pts;
        for (std::size_t i = 0; i < r.points.size(); ++i) {
            pts += fmt::format("{:.1f},{:.1f} ", sx(i, r.points[i].x), sy(r.points[i].at(name)));
        }
        return fmt::format(R"(<polyline points="{}" fill="none" stroke="{}" stroke-width="2" {}/>)", pts,
                           color, dash);
    };
    if (!r.ideal.empty()) {
        svg += polyline(r.ideal, "#79b887", R"(stroke-dasharray="6 4")");
    }
    svg += polyline(r.figure, "#3b6fd1", "");
    for (std::size_t i = 0; i < r.points.size(); ++i) {
        const double v = r.points[i].at(r.figure);
        svg += fmt::format(R"(<circle cx="{:.1f}" cy="{:.1f}" r="3.5" fill="#3b6fd1"/>)",
                           sx(i, r.points[i].x), sy(v));
        svg += fmt::format(R"(<text x="{:.1f}" y="{:.1f}" text-anchor="middle" fill="#1d232b">{}</text>)",
                           sx(i, r.points[i].x), sy(v) - 8, number(v));
    }
    // The legend: measured, and the ideal it is compared with.
    svg += fmt::format(R"(<line x1="{0}" x2="{1}" y1="{2}" y2="{2}" stroke="#3b6fd1" stroke-width="2"/>)"
                       R"(<text x="{3}" y="{4}" fill="#1d232b">measured</text>)",
                       left + 10, left + 30, top + 6, left + 36, top + 10);
    if (!r.ideal.empty()) {
        svg += fmt::format(
            R"(<line x1="{0}" x2="{1}" y1="{2}" y2="{2}" stroke="#79b887" stroke-width="2" stroke-dasharray="6 4"/>)"
            R"(<text x="{3}" y="{4}" fill="#1d232b">{5}</text>)",
            left + 110, left + 130, top + 6, left + 136, top + 10, escaped(r.ideal));
    }
    return svg + "</svg>";
}

std::string report_html(const std::vector<experiment_result>& results,
                        const nlohmann::ordered_json& environment)
{
    std::string html = R"(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>duet-load experiments</title>
<style>
body { font-family: system-ui, sans-serif; color: #1d232b; max-width: 1000px; margin: 0 auto; padding: 16px; }
table { border-collapse: collapse; margin: 8px 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d9dde3; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.held { color: #1e6b32; } .failed { color: #a3231b; } .not_applicable { color: #5d6875; }
</style></head><body>
<h1>duet-load experiments</h1>
)";
    html += fmt::format("<p>{}</p>\n", escaped(environment.dump()));
    for (const auto& r : results) {
        html += fmt::format("<h2>{}</h2>\n<p>{}</p>\n<p><small>server: {}</small></p>\n", escaped(r.name),
                            escaped(r.claim), escaped(r.environment.dump()));
        html += chart_svg(r);
        html += "\n<table><tr><th>" + escaped(r.varied) + "</th>";
        if (!r.points.empty()) {
            for (const auto& [k, v] : r.points.front().values) {
                html += "<th>" + escaped(k) + "</th>";
            }
        }
        html += "</tr>\n";
        for (const auto& p : r.points) {
            html += "<tr><td>" + escaped(p.label) + "</td>";
            for (const auto& [k, v] : p.values) {
                html += "<td>" + fmt::format("{:.3f}", v) + "</td>";
            }
            html += "</tr>\n";
        }
        const char* cls = r.outcome == experiment_result::verdict::held     ? "held"
                          : r.outcome == experiment_result::verdict::failed ? "failed"
                                                                            : "not_applicable";
        html += fmt::format("</table>\n<p class=\"{}\"><b>{}</b>: {}</p>\n", cls,
                            r.outcome == experiment_result::verdict::held     ? "held"
                            : r.outcome == experiment_result::verdict::failed ? "did not hold"
                                                                              : "not shown here",
                            escaped(r.conclusion));
    }
    return html + "</body></html>\n";
}

} // namespace duet::client
