#include "lib/common/svg_chart.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace presso {

namespace {

constexpr double kLeft = 72, kRight = 24, kTop = 48, kBottom = 56;  // plot area margins, px

std::string escape_xml(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Ticks at 1, 2 or 5 × 10^n covering [low, high], about five of them.
std::vector<double> nice_ticks(double low, double high) {
  const double raw = (high - low) / 5;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double factor : {1.0, 2.0, 5.0, 10.0}) {
    step = factor * magnitude;
    if (step >= raw) break;
  }
  std::vector<double> ticks;
  for (double t = std::ceil(low / step) * step; t <= high + step * 1e-9; t += step)
    ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  return ticks;
}

struct Range {
  double low = 0, high = 1;
  void pad() {  // room around the data, and a width even when all values are equal
    const double span = high - low;
    const double margin = span > 0 ? span * 0.08 : std::max(std::abs(high) * 0.1, 1e-3);
    low -= margin;
    high += margin;
  }
};

void draw_panel(std::string& svg, const ScatterPanel& panel, double x0, double width,
                double height) {
  std::vector<ChartPoint> points;
  for (const auto& p : panel.points)
    if (std::isfinite(p.x) && std::isfinite(p.y)) points.push_back(p);
  Range xr{0, 1}, yr{0, 1};
  if (!points.empty() || panel.reference) {
    xr = {INFINITY, -INFINITY};
    yr = {INFINITY, -INFINITY};
    for (const auto& p : points) {
      xr = {std::min(xr.low, p.x), std::max(xr.high, p.x)};
      yr = {std::min(yr.low, p.y), std::max(yr.high, p.y)};
    }
    if (points.empty()) xr = {0, 1};
    if (panel.reference)
      yr = {std::min(yr.low, panel.reference->y), std::max(yr.high, panel.reference->y)};
    xr.pad();
    yr.pad();
  }
  const double plot_w = width - kLeft - kRight, plot_h = height - kTop - kBottom;
  const auto px = [&](double x) { return x0 + kLeft + (x - xr.low) / (xr.high - xr.low) * plot_w; };
  const auto py = [&](double y) {
    return kTop + plot_h - (y - yr.low) / (yr.high - yr.low) * plot_h;
  };

  svg += fmt::format(
      "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"#f7f7f7\" "
      "stroke=\"#444\"/>\n",
      x0 + kLeft, kTop, plot_w, plot_h);
  svg += fmt::format(
      "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" font-size=\"15\" "
      "font-weight=\"bold\">{}</text>\n",
      x0 + kLeft + plot_w / 2, kTop - 16, escape_xml(panel.title));
  for (double t : nice_ticks(xr.low, xr.high)) {
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" "
        "stroke=\"#ddd\"/>\n",
        px(t), kTop, kTop + plot_h);
    svg += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" font-size=\"11\">"
        "{:g}</text>\n",
        px(t), kTop + plot_h + 16, t);
  }
  for (double t : nice_ticks(yr.low, yr.high)) {
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" "
        "stroke=\"#ddd\"/>\n",
        x0 + kLeft, py(t), x0 + kLeft + plot_w);
    svg += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" font-size=\"11\">"
        "{:g}</text>\n",
        x0 + kLeft - 6, py(t) + 4, t);
  }
  svg += fmt::format(
      "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" font-size=\"13\">"
      "{}</text>\n",
      x0 + kLeft + plot_w / 2, height - 14, escape_xml(panel.x_label));
  svg += fmt::format(
      "<text transform=\"translate({:.1f},{:.1f}) rotate(-90)\" "
      "text-anchor=\"middle\" font-size=\"13\">{}</text>\n",
      x0 + 18, kTop + plot_h / 2, escape_xml(panel.y_label));
  if (panel.reference) {
    const double y = py(panel.reference->y);
    svg += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" "
        "stroke-width=\"2\" stroke-dasharray=\"8 4\"/>\n",
        x0 + kLeft, y, x0 + kLeft + plot_w, y, kChartReferenceColor);
    svg += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" font-size=\"11\" "
        "fill=\"{}\">{}</text>\n",
        x0 + kLeft + plot_w - 4, y - 5, kChartReferenceColor, escape_xml(panel.reference->label));
  }
  for (const auto& p : points) {
    svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"5\" fill=\"{}\"/>\n", px(p.x),
                       py(p.y), kChartPointColor);
    // Labels of points in the right half go to their left, so they stay inside the panel.
    const bool right_half = px(p.x) > x0 + kLeft + plot_w / 2;
    svg += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"10\" text-anchor=\"{}\">{}</text>\n",
        px(p.x) + (right_half ? -7 : 7), py(p.y) - 5, right_half ? "end" : "start",
        escape_xml(p.label));
  }
}

}  // namespace

std::string scatter_chart_svg(const std::string& title, const std::vector<ScatterPanel>& panels,
                              int panel_width, int panel_height) {
  const int width = panel_width * static_cast<int>(std::max<size_t>(panels.size(), 1));
  const int height = panel_height + 28;  // the title above the panels
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
      "viewBox=\"0 0 {0} {1}\" font-family=\"sans-serif\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{2}\" y=\"20\" text-anchor=\"middle\" font-size=\"16\">{3}</text>\n"
      "<g transform=\"translate(0,28)\">\n",
      width, height, width / 2, escape_xml(title));
  for (size_t i = 0; i < panels.size(); ++i)
    draw_panel(svg, panels[i], static_cast<double>(i) * panel_width, panel_width, panel_height);
  svg += "</g>\n</svg>\n";
  return svg;
}

}  // namespace presso
