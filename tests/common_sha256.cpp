// SHA-256 against the FIPS 180-2 appendix examples (the standard's own test vectors), streamed in
// any chunking, and the file helper's errors.
#include <catch2/catch.hpp>
#include <fstream>
#include <string>
#include <vector>

#include "lib/common/errors.h"
#include "lib/common/sha256.h"
#include "tests/temp_dir.h"

using presso::Sha256;
using presso::sha256_hex;

namespace {

std::string digest_of(const std::string& text) { return sha256_hex(text.data(), text.size()); }

// The digest of `text` fed to one Sha256 in pieces of the given sizes, cycled until it runs out.
std::string streamed_digest(const std::string& text, const std::vector<size_t>& piece_sizes) {
  Sha256 digest;
  size_t at = 0;
  for (size_t i = 0; at < text.size(); ++i) {
    const size_t n = std::min(piece_sizes[i % piece_sizes.size()], text.size() - at);
    digest.update(text.data() + at, n);
    at += n;
  }
  return digest.hex_digest();
}

const std::string kTwoBlockMessage = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

}  // namespace

TEST_CASE("sha256 of the standard's one-shot vectors", "[unit]") {
  CHECK(digest_of("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(digest_of("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // 448 bits: the padding's length field no longer fits the first block, so it takes two.
  CHECK(digest_of(kTwoBlockMessage) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(sha256_hex(nullptr, 0) == digest_of(""));
}

TEST_CASE("sha256 of a million 'a' streamed in uneven chunks", "[unit]") {
  const std::string million(1000000, 'a');
  const std::string expected = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
  CHECK(digest_of(million) == expected);
  // Pieces below, at and across the 64-byte block size, so the partial-block path is taken
  // in every state.
  CHECK(streamed_digest(million, {1, 63, 64, 65, 7, 1000, 3, 4096, 127, 0}) == expected);
  CHECK(streamed_digest(million, {999983}) == expected);  // one big piece and a 17-byte tail
}

TEST_CASE("sha256 does not depend on where the input is split", "[unit]") {
  std::string text;
  for (int i = 0; i < 300; ++i) text.push_back(static_cast<char>((i * 37 + 11) & 0xff));
  // Every length from 0 to 300 covers each padding case (0..63 bytes left, length field in the
  // same block or the next); every split point of each is compared with the one-shot digest.
  for (size_t length = 0; length <= text.size(); length += 1) {
    const std::string message = text.substr(0, length);
    const std::string expected = digest_of(message);
    for (size_t split = 0; split <= length; split += 7) {
      Sha256 digest;
      digest.update(message.data(), split);
      digest.update(message.substr(split));
      INFO("length " << length << " split " << split);
      REQUIRE(digest.hex_digest() == expected);
    }
  }
}

TEST_CASE("hex_digest can be read twice and forbids further updates", "[unit]") {
  Sha256 digest;
  digest.update(std::string("abc"));
  const std::string first = digest.hex_digest();
  CHECK(digest.hex_digest() == first);
  CHECK_THROWS_AS(digest.update("d", 1), presso::InternalError);
}

TEST_CASE("sha256_file_hex digests a file's bytes and names a file it cannot read", "[unit]") {
  presso::test::TempDir dir("sha256");
  std::string binary = kTwoBlockMessage;
  binary.push_back('\0');  // a file is bytes, not a C string
  binary += std::string(3000000, 'x');
  const std::string path = dir.write("data.bin", binary);
  CHECK(presso::sha256_file_hex(path) == digest_of(binary));
  CHECK(presso::sha256_file_hex(dir.write("empty", "")) == digest_of(""));

  const std::string missing = dir.file("missing.safetensors");
  CHECK_THROWS_WITH(presso::sha256_file_hex(missing), Catch::Contains("missing.safetensors"));
  CHECK_THROWS_AS(presso::sha256_file_hex(missing), presso::UserError);
  CHECK_THROWS_WITH(presso::sha256_file_hex(dir.path.string()), Catch::Contains("directory"));
}
