// Rasterises an SVG file for a test to look at its pixels: Debian's rsvg-convert (librsvg2-bin)
// renders it to PNG, gdk-pixbuf-pixdata (libgdk-pixbuf2.0-bin) turns the PNG into raw RGB(A)
// rows, which are read here — no image library linked. Both come from scripts/setup.
#pragma once

#include <array>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "lib/common/files.h"

namespace presso::test {

struct Raster {
  int width = 0;
  int height = 0;
  int channels = 0;  // 3 (RGB) or 4 (RGBA)
  std::vector<uint8_t> pixels;

  std::array<int, 3> rgb(int x, int y) const {
    const size_t at = (static_cast<size_t>(y) * width + x) * channels;
    return {pixels[at], pixels[at + 1], pixels[at + 2]};
  }
  // Pixels of the rectangle [x0, x1) × [y0, y1) within `tolerance` of `color` in every channel.
  int count(std::array<int, 3> color, int x0, int y0, int x1, int y1, int tolerance = 40) const {
    int n = 0;
    for (int y = y0; y < y1; ++y)
      for (int x = x0; x < x1; ++x) {
        const auto c = rgb(x, y);
        bool close = true;
        for (int i = 0; i < 3; ++i) close = close && std::abs(c[i] - color[i]) <= tolerance;
        n += close;
      }
    return n;
  }
};

// "#1f5fbf" -> {31, 95, 191}
inline std::array<int, 3> hex_color(const std::string& hex) {
  return {std::stoi(hex.substr(1, 2), nullptr, 16), std::stoi(hex.substr(3, 2), nullptr, 16),
          std::stoi(hex.substr(5, 2), nullptr, 16)};
}

inline uint32_t big_endian_u32(const std::string& bytes, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(bytes[at + i]);
  return v;
}

// Whether both tools are installed; if not, prints the skip marker (the GPU machines, which have
// no package manager, lack them; CI has them from scripts/setup) and the caller skips its pixel
// checks.
inline bool raster_tools_or_skip() {
  if (std::system("command -v rsvg-convert >/dev/null && command -v gdk-pixbuf-pixdata >/dev/null") ==
      0)
    return true;
  std::cout << "PRESSO-SKIP: rsvg-convert (librsvg2-bin) or gdk-pixbuf-pixdata "
               "(libgdk-pixbuf2.0-bin) is missing; scripts/setup installs them\n";
  return false;
}

// Renders `svg_path` through `work_prefix`.png and .pixdata.
inline Raster rasterise_svg(const std::string& svg_path, const std::string& work_prefix) {
  const std::string png = work_prefix + ".png", raw = work_prefix + ".pixdata";
  INFO(
      "needs rsvg-convert (librsvg2-bin) and gdk-pixbuf-pixdata (libgdk-pixbuf2.0-bin): "
      "scripts/setup installs them");
  REQUIRE(std::system(("rsvg-convert '" + svg_path + "' -o '" + png + "'").c_str()) == 0);
  REQUIRE(std::system(("gdk-pixbuf-pixdata '" + png + "' '" + raw + "'").c_str()) == 0);
  // GdkPixdata, big-endian: "GdkP", total length, type, rowstride, width, height, then rows.
  const std::string bytes = read_file_bytes(raw);
  REQUIRE(bytes.size() > 24);
  REQUIRE(bytes.substr(0, 4) == "GdkP");
  const uint32_t type = big_endian_u32(bytes, 8);
  REQUIRE((type >> 24) == 1);  // raw rows, not run-length encoded
  Raster raster;
  raster.channels = (type & 0xff) == 2 ? 4 : 3;
  const uint32_t rowstride = big_endian_u32(bytes, 12);
  raster.width = static_cast<int>(big_endian_u32(bytes, 16));
  raster.height = static_cast<int>(big_endian_u32(bytes, 20));
  REQUIRE(bytes.size() >= 24 + static_cast<size_t>(rowstride) * raster.height);
  for (int y = 0; y < raster.height; ++y) {
    const char* row = bytes.data() + 24 + static_cast<size_t>(rowstride) * y;
    raster.pixels.insert(raster.pixels.end(), row, row + raster.width * raster.channels);
  }
  return raster;
}

}  // namespace presso::test
