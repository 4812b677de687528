// The sweep's SVG writer, rendered by librsvg: the document is valid, the plot areas hold the
// points and the reference line where the axes put them, and nothing is drawn from non-finite
// values.
#include <catch2/catch.hpp>
#include <cmath>

#include "lib/common/files.h"
#include "lib/common/svg_chart.h"
#include "tests/svg_raster.h"
#include "tests/temp_dir.h"

using namespace presso;

TEST_CASE("a scatter chart renders its points and reference line", "[unit]") {
  presso::test::TempDir dir("svg_chart");
  ScatterPanel ppl{"Perplexity",
                   "bits per weight",
                   "ppl",
                   {{4.2, 12.5, "w4"}, {3.1, 15.0, "w3 & <asym>"}, {8.3, 11.0, "w8"}},
                   ReferenceLine{10.0, "original"}};
  ScatterPanel empty{"KL", "bits per weight", "mean KL", {{NAN, 1.0, "nan"}}, std::nullopt};
  const std::string svg = scatter_chart_svg("sweep", {ppl, empty}, 400, 300);
  CHECK(svg.find("w3 &amp; &lt;asym&gt;") != std::string::npos);  // escaped, still valid XML
  const std::string path = dir.write("chart.svg", svg);
  if (!presso::test::raster_tools_or_skip()) return;
  const auto raster = presso::test::rasterise_svg(path, dir.file("chart"));
  REQUIRE(raster.width == 800);
  REQUIRE(raster.height == 328);

  const auto blue = presso::test::hex_color(kChartPointColor);
  const auto red = presso::test::hex_color(kChartReferenceColor);
  // Left panel (x < 400): three markers of radius 5 (~78 px each) and a dashed line across the
  // plot area (~300 px wide, 2/3 of it drawn, 2 px thick, edges antialiased).
  CHECK(raster.count(blue, 0, 0, 400, 328) > 150);
  CHECK(raster.count(red, 0, 0, 400, 328) > 150);
  // The reference (ppl 10) lies below every point (ppl ≥ 11): its row is under the markers'.
  int red_row = -1, lowest_blue = -1;
  for (int y = 0; y < raster.height; ++y) {
    if (raster.count(red, 0, y, 400, y + 1) > 100) red_row = std::max(red_row, y);
    if (raster.count(blue, 0, y, 400, y + 1) > 0) lowest_blue = std::max(lowest_blue, y);
  }
  CHECK(red_row > lowest_blue);
  // The higher the ppl, the higher on the canvas: the w3 point (ppl 15) is the topmost blue.
  int top_blue_x = -1;
  for (int y = 0; y < raster.height && top_blue_x < 0; ++y)
    for (int x = 0; x < 400; ++x)
      if (raster.count(blue, x, y, x + 1, y + 1) > 0) {
        top_blue_x = x;
        break;
      }
  CHECK(top_blue_x < 200);  // w3 has the fewest bits: left of the panel's middle
  // Right panel: its only point is not finite, so nothing blue or red there.
  CHECK(raster.count(blue, 400, 0, 800, 328) == 0);
  CHECK(raster.count(red, 400, 0, 800, 328) == 0);
  // The canvas is white outside the plot areas and grey-ish inside, never blank black.
  CHECK(raster.count({255, 255, 255}, 0, 0, 800, 328, 2) > 800 * 328 / 10);
}
