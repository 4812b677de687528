// Scatter charts as a standalone SVG file, our own writer (no plotting dependency): panels side
// by side, each with linear axes and ticks, labelled points and an optional horizontal reference
// line. `presso sweep` draws perplexity and KL against bits per weight with it.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace presso {

struct ChartPoint {
  double x = 0;
  double y = 0;
  std::string label;
};

struct ReferenceLine {
  double y = 0;
  std::string label;
};

struct ScatterPanel {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<ChartPoint> points;  // non-finite coordinates are left out
  std::optional<ReferenceLine> reference;
};

// Colours the test rasterising the chart looks for.
constexpr const char* kChartPointColor = "#1f5fbf";
constexpr const char* kChartReferenceColor = "#d0202e";

// A complete SVG document with the panels left to right, each `panel_width` × `panel_height`.
std::string scatter_chart_svg(const std::string& title, const std::vector<ScatterPanel>& panels,
                              int panel_width = 560, int panel_height = 420);

}  // namespace presso
