// SHA-256 (FIPS 180-4, section 6.2) for content digests: tests compare written checkpoints against
// digests recorded from an earlier build, and reports can name the exact bytes they describe.
// Not meant for secrets: nothing here is constant-time or wiped after use.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace presso {

// Incremental digest: feed bytes in any chunking with update(), then read hex_digest(). The result
// does not depend on how the input was split.
class Sha256 {
 public:
  Sha256();

  void update(const void* data, size_t size);
  void update(const std::string& bytes) { update(bytes.data(), bytes.size()); }

  // The 32-byte digest as 64 lowercase hex characters. Finishes the digest: call it once, after
  // the last update(); later calls return the same string, and update() after it is an error.
  std::string hex_digest();

 private:
  void compress_block(const uint8_t* block);  // one 64-byte message block into state_
  void finish();

  std::array<uint32_t, 8> state_;  // H0..H7
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;       // bytes waiting in buffer_
  uint64_t total_bytes_ = 0;  // message length so far
  bool finished_ = false;
  std::string hex_;
};

// SHA-256 of `size` bytes at `data`, as 64 lowercase hex characters.
std::string sha256_hex(const void* data, size_t size);

// SHA-256 of a file's contents, read in chunks (a multi-gigabyte checkpoint is never held in
// memory); UserError naming the path if it cannot be opened or read.
std::string sha256_file_hex(const std::string& path);

}  // namespace presso
