#include "lib/compress/sweep.h"

#include <chrono>
#include <filesystem>
#include <map>

#include "lib/common/errors.h"
#include "lib/common/files.h"
#include "lib/common/json_input.h"
#include "lib/common/output_paths.h"
#include "lib/common/sha256.h"
#include "lib/common/version.h"
#include "lib/compress/driver.h"
#include "lib/compress/sweep_results.h"
#include "lib/eval/eval_job.h"
#include "lib/eval/fingerprint.h"
#include "lib/io/weight_files.h"
#include "lib/model/model.h"

namespace presso {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json read_json_if_valid(const fs::path& path) {
  if (!fs::is_regular_file(path)) return nullptr;
  try {
    return parse_json_input(read_file_bytes(path.string()), path.string());
  } catch (const std::exception&) {
    return nullptr;  // unreadable: measured again
  }
}

// A run can be reused when it was made from exactly these inputs and its files are all there.
// inputs.json is written last, so an interrupted run never looks complete.
bool up_to_date(const fs::path& dir, const json& inputs, const std::vector<std::string>& files) {
  if (read_json_if_valid(dir / "inputs.json") != inputs) return false;
  for (const auto& file : files)
    if (!fs::exists(dir / file)) return false;
  return true;
}

std::string duration_text(double seconds) {
  if (seconds < 90) return fmt::format("{:.0f} s", seconds);
  return fmt::format("{:.0f} min {:02.0f} s", std::floor(seconds / 60), std::fmod(seconds, 60));
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void validate(const SweepOptions& options) {
  if (options.recipes.empty()) fail_user("presso sweep needs at least one recipe");
  std::map<std::string, std::string> names;
  for (const auto& recipe : options.recipes) {
    if (!fs::is_regular_file(recipe)) fail_user("{}: recipe file not found", recipe);
    const std::string name = fs::path(recipe).stem().string();
    if (name == "original")
      fail_user("{}: the name 'original' is the uncompressed model's", recipe);
    const auto [it, added] = names.emplace(name, recipe);
    if (!added)
      fail_user("recipes {} and {} would both be run '{}': rename one", it->second, recipe, name);
  }
  for (const auto& [flag, path] :
       {std::pair{"--calib", options.calib_path}, std::pair{"--eval", options.eval_path}})
    if (!fs::is_regular_file(path)) fail_user("{} {}: file not found", flag, path);
  check_output_paths({{"-o", options.output_dir}}, {{"--model", options.model_dir}});
  // A sweep writes reference/, runs/ and its result files into the folder and replaces the
  // models under runs/: never in a folder of the user's that a typo named.
  const fs::path out(options.output_dir);
  std::error_code ec;
  if (fs::exists(out, ec) && !(fs::is_directory(out, ec) && fs::is_empty(out, ec))) {
    bool sweep_folder = false;
    for (const char* entry : {"reference", "runs", "results.json"})
      sweep_folder = sweep_folder || fs::exists(out / entry, ec);
    if (!fs::is_directory(out, ec) || !sweep_folder)
      fail_user(
          "-o {}: exists and is not the folder of an earlier presso sweep (no reference/, "
          "runs/ or results.json in it); name a new or empty folder",
          options.output_dir);
  }
}

EvalOptions eval_options(const SweepOptions& options, const std::string& model_dir,
                         const fs::path& run_dir) {
  EvalOptions eval;
  eval.model_dir = model_dir;
  eval.data_path = options.eval_path;
  eval.seqlen = options.eval_seqlen;
  eval.max_windows = options.eval_windows;
  eval.json_path = (run_dir / "eval.json").string();
  eval.progress = false;
  eval.top_k = options.top_k;
  return eval;
}

void fill_from_report(SweepRow& row, const json& report, const fs::path& model_dir,
                      int64_t parameters) {
  row.ppl = report.at("ppl").get<double>();
  if (report.contains("mean_kl")) {
    row.mean_kl = report["mean_kl"].get<double>();
    row.top1_agreement = report["top1_agreement"].get<double>();
  }
  row.size_bytes = weight_file_bytes(model_dir.string());
  row.bits_per_weight = 8.0 * static_cast<double>(row.size_bytes) / static_cast<double>(parameters);
}

}  // namespace

int SweepResult::failed() const {
  int count = 0;
  for (const auto& row : rows) count += row.status == "failed";
  return count;
}

SweepResult run_sweep(const SweepOptions& options, const PassRegistry& registry) {
  validate(options);
  const auto log = [&options](const std::string& line) {
    if (options.log) options.log(line);
  };
  int64_t parameters = 0;
  {
    const Model model = Model::open(options.model_dir);
    model.check_tensor_shapes();
    model.check_sequence_length(options.seqlen, "--seqlen");
    model.check_sequence_length(options.eval_seqlen, "--eval-seqlen");
    parameters = model.parameter_count();
  }
  const fs::path out(options.output_dir);
  fs::create_directories(out / "reference");
  fs::create_directories(out / "runs");
  const json evaluation = {{"data_sha256", sha256_file_hex(options.eval_path)},
                           {"seqlen", options.eval_seqlen},
                           {"windows", options.eval_windows ? json(*options.eval_windows) : json()},
                           {"top_k", options.top_k}};
  const json common = {{"model", model_fingerprint(options.model_dir)},
                       {"evaluation", evaluation},
                       {"presso", version_description()}};

  SweepResult result;
  const fs::path reference = out / "reference";
  const std::string logprobs = (reference / "logprobs.safetensors").string();
  result.original.name = "original";
  result.original.status = "reused";
  if (!up_to_date(reference, common, {"eval.json", "logprobs.safetensors"})) {
    log("original: measuring perplexity and the reference log-probs");
    const auto start = std::chrono::steady_clock::now();
    EvalOptions eval = eval_options(options, options.model_dir, reference);
    eval.save_logprobs_path = logprobs;
    run_eval(eval);
    write_file_atomically((reference / "inputs.json").string(), common.dump(2) + "\n");
    result.original.status = "measured";
    result.original.seconds = seconds_since(start);
  }
  fill_from_report(result.original, read_json_if_valid(reference / "eval.json"), options.model_dir,
                   parameters);
  result.original.mean_kl = 0;  // the reference itself
  result.original.top1_agreement = 1;
  log(fmt::format("original: {:.2f} bits per weight, ppl {:.4f} ({})",
                  result.original.bits_per_weight, result.original.ppl, result.original.status));

  const std::string calib_sha = sha256_file_hex(options.calib_path);
  const size_t total = options.recipes.size();
  double worked_seconds = 0;
  int worked = 0;
  for (size_t i = 0; i < total; ++i) {
    SweepRow row;
    row.recipe = options.recipes[i];
    row.name = fs::path(row.recipe).stem().string();
    const std::string step = fmt::format("[{}/{}] {}", i + 1, total, row.name);
    const fs::path run_dir = out / "runs" / row.name;
    const fs::path model_dir = run_dir / "model";
    json inputs = common;
    inputs["recipe_sha256"] = sha256_file_hex(row.recipe);
    inputs["calibration"] = {{"sha256", calib_sha},
                             {"nsamples", options.nsamples},
                             {"seqlen", options.seqlen},
                             {"seed", options.seed}};
    inputs["format"] = output_format_name(options.format);
    const auto start = std::chrono::steady_clock::now();
    try {
      if (up_to_date(run_dir, inputs, {"model/presso_report.json", "eval.json"})) {
        row.status = "reused";
        log(step + ": reused (inputs unchanged), no compression");
      } else {
        fs::create_directories(run_dir);
        remove_tree((run_dir / "inputs.json").string());
        log(step + ": compressing");
        CompressOptions compress;
        compress.model_dir = options.model_dir;
        compress.recipe_path = row.recipe;
        compress.output_dir = model_dir.string();
        compress.format = options.format;
        compress.overwrite = true;
        compress.calibration.path = options.calib_path;
        compress.nsamples = options.nsamples;
        compress.seqlen = options.seqlen;
        compress.seed = options.seed;
        compress_model(compress, registry);
        EvalOptions eval = eval_options(options, model_dir.string(), run_dir);
        eval.logprobs_path = logprobs;
        run_eval(eval);
        write_file_atomically((run_dir / "inputs.json").string(), inputs.dump(2) + "\n");
        row.status = "compressed";
        row.seconds = seconds_since(start);
      }
      fill_from_report(row, read_json_if_valid(run_dir / "eval.json"), model_dir, parameters);
    } catch (const Error& e) {
      row.status = "failed";
      row.error = e.what();
      row.exit_code = e.exit_code();
    } catch (const std::exception& e) {
      row.status = "failed";
      row.error = e.what();
      row.exit_code = 3;
    }
    if (row.status != "reused") {
      worked_seconds += seconds_since(start);
      ++worked;
    }
    // From the runs that did work; reused ones take no time worth counting.
    const std::string eta_text =
        worked && i + 1 < total
            ? "; ETA " + duration_text(worked_seconds / worked * static_cast<double>(total - i - 1))
            : "";
    if (row.status == "failed")
      log(fmt::format("{}: FAILED: {}{}", step, row.error, eta_text));
    else
      log(fmt::format("{}: {:.2f} bits per weight, ppl {:.4f}, mean KL {:.5f}{}{}", step,
                      row.bits_per_weight, row.ppl, row.mean_kl,
                      row.status == "compressed" ? " in " + duration_text(row.seconds) : "",
                      eta_text));
    result.rows.push_back(row);
  }
  write_sweep_results(result, fs::weakly_canonical(options.model_dir).filename().string(),
                      out.string());
  return result;
}

}  // namespace presso
