// The record a `compress` run keeps of its finished blocks, so that `compress --resume` after a
// crash, SIGKILL or Ctrl-C continues after the last one and writes the same bytes as a run that
// was never stopped. Internal to the driver.
//
// It lives beside the output, in `<out>.presso-resume/`: job.json names the job it belongs to
// (the model's and calibration files, the recipe, every option that can change a bit of the
// output, presso's commit), and block-NNNN.safetensors holds, per finished block, what the passes
// left: every tensor of the block they may have changed (a quantized weight as its codes alone
// when it equals them dequantized, as it does after every quantizing pass) and, in the file's
// metadata, the block's report entries. Activations are not kept (4 GiB per block for a 7B model
// at 128 × 2048 tokens): resuming replays the recorded blocks — each is written again and run
// over the calibration windows to rebuild the next one's inputs, one forward per block instead of
// its statistics and passes. The directory goes once the outputs are installed.
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lib/compress/driver.h"
#include "lib/compress/pass.h"
#include "lib/compress/report.h"
#include "lib/model/model.h"

namespace presso {

// What a recorded block gives back: the quantized linears' states (codes and grid, all the
// writers read), and the block's report entries as the interrupted run measured them.
struct RecordedBlock {
  std::map<std::string, LinearState> states;
  std::vector<LayerReport> layers;
  BlockTimings timings;
};

class ResumeJournal {
 public:
  // `<out>.presso-resume`.
  static std::string directory_for(const std::string& output_dir);

  // Opens the journal of `options.output_dir` for a run of `identity` (resume_identity()). A
  // journal left by an interrupted run of the same job is continued with options.resume,
  // discarded with options.overwrite, and otherwise refused (UserError: pass one of them); one of
  // another job is discarded, with a warning. --resume with no journal starts afresh, with a
  // note. UserError when another live presso holds it (its lock).
  ResumeJournal(const CompressOptions& options, const nlohmann::json& identity,
                const std::function<void(const std::string&)>& warn);
  ~ResumeJournal();
  ResumeJournal(const ResumeJournal&) = delete;
  ResumeJournal& operator=(const ResumeJournal&) = delete;

  // Blocks 0 … recorded_blocks() − 1 are recorded.
  int recorded_blocks() const { return recorded_; }

  // Records a finished block (atomically: a kill leaves it whole or absent).
  void record(const DecoderBlock& block, const std::map<std::string, LinearState>& states,
              const std::vector<LayerReport>& layers, const BlockTimings& timings);
  // Puts a recorded block's tensors into `block` (freshly loaded from the checkpoint, on the
  // compute device) and returns its states, whose `linear` point into `block`. UserError naming
  // the file when the record is damaged.
  RecordedBlock restore(DecoderBlock& block) const;

  // Deletes the journal: the outputs it was for are installed.
  void remove();

 private:
  // Under the lock: keeps, discards or refuses what an earlier run recorded.
  void open_records(const CompressOptions& options, const nlohmann::json& identity,
                    const std::function<void(const std::string&)>& note);

  std::string dir_;
  int recorded_ = 0;
  int lock_fd_ = -1;
};

// What identifies a job to its journal: the inputs (paths, sizes and modification times of the
// model's and the calibration files), the canonical recipe, every option that can change the
// output's bytes, and presso's build.
nlohmann::json resume_identity(const CompressOptions& options, const Model& model,
                               const std::string& canonical_recipe);

}  // namespace presso
