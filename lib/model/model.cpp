#include "lib/model/model.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <set>
#include <utility>

#include "lib/common/errors.h"

namespace presso {
namespace {

// How a linear's weight is stored: Conv1D keeps [in, out]; every linear in memory is [out, in].
std::vector<int64_t> stored_weight_shape(const LinearSpec& spec) {
  return spec.conv1d ? std::vector<int64_t>{spec.in, spec.out}
                     : std::vector<int64_t>{spec.out, spec.in};
}

std::string shape_mismatch(const std::string& name, const std::vector<int64_t>& stored,
                           const std::vector<int64_t>& expected) {
  return fmt::format("tensor '{}' has shape [{}], expected [{}] from config.json", name,
                     fmt::join(stored, ", "), fmt::join(expected, ", "));
}

}  // namespace

Model Model::open(const std::string& dir) {
  Model model;
  model.dir_ = dir;
  model.config_ = std::make_unique<ModelConfig>(load_model_config(dir));
  model.packed_ = PackedWeights::parse(model.config_->quantization_config, model.config_->path,
                                       model.config_->dtype);
  const FamilyEntry* entry = find_family(model.config_->model_type);
  if (entry == nullptr)
    fail_internal("no family for parsed model_type '{}'", model.config_->model_type);
  model.spec_ = entry->describe(*model.config_);
  model.store_ = TensorStore::open_dir(dir);
  bool found = false;
  std::vector<std::string> tried;
  for (const auto& candidate : model.spec_.prefix_candidates) {
    tried.push_back(candidate + model.spec_.embed_tokens);
    if (model.store_.contains(tried.back())) {
      model.spec_.prefix = candidate;
      found = true;
      break;
    }
  }
  if (!found) {
    fail_user("{}: no token embedding found for a {} checkpoint (looked for {})", dir,
              model.config_->model_type, fmt::join(tried, ", "));
  }
  // The block list is sized from config.json: the checkpoint must hold its last block first.
  const std::string last_block = model.spec_.block_name(model.num_blocks() - 1);
  const std::vector<std::string> names = model.store_.names();  // sorted
  const auto at = std::lower_bound(names.begin(), names.end(), last_block);
  if (at == names.end() || at->rfind(last_block, 0) != 0) {
    fail_user(
        "{}: config.json gives {} decoder layers, but the checkpoint has no tensor of the "
        "last one ({}*)",
        dir, model.config_->num_layers, last_block);
  }
  model.cache_ = std::make_unique<AttentionCache>(*model.config_);
  model.blocks_.resize(static_cast<size_t>(model.config_->num_layers));
  return model;
}

torch::Tensor Model::load_tensor(const std::string& name, const std::vector<int64_t>& shape,
                                 const std::string& needed_by,
                                 std::optional<torch::Device> device) const {
  if (!store_.contains(name)) {
    fail_user("{}: tensor '{}' ({}) is missing from the checkpoint", dir_, name, needed_by);
  }
  const TensorInfo& info = store_.info(name);
  if (info.shape != shape)
    fail_user("{}: {} ({})", dir_, shape_mismatch(name, info.shape, shape), needed_by);
  return store_.load(name, torch::kFloat32).to(device.value_or(device_));
}

Linear Model::load_linear(const LinearSpec& spec, const std::string& prefix,
                          const std::string& needed_by, std::optional<torch::Device> device) const {
  Linear linear;
  linear.name = prefix + spec.name;
  if (packed_.is_packed(linear.name, store_)) {
    // Packed layouts are defined on [out, in], Conv1D or not; stored_transposed still tells a
    // dense writer how the source stored it.
    linear.weight = packed_.load_dequantized(linear.name, store_, spec.out, spec.in)
                        .to(device.value_or(device_));
    linear.stored_transposed = spec.conv1d;
  } else {
    linear.weight =
        load_tensor(linear.name + ".weight", stored_weight_shape(spec), needed_by, device);
    if (spec.conv1d) linear.weight = linear.weight.t().contiguous();
    linear.stored_transposed = spec.conv1d;
  }
  if (spec.bias) linear.bias = load_tensor(linear.name + ".bias", {spec.out}, needed_by, device);
  return linear;
}

Norm Model::load_norm(const NormSpec& spec, const std::string& prefix, const std::string& needed_by,
                      std::optional<torch::Device> device) const {
  Norm norm;
  norm.name = prefix + spec.name;
  if (spec.has_weight)
    norm.weight = load_tensor(norm.name + ".weight", {spec.dim}, needed_by, device);
  if (spec.has_bias) norm.bias = load_tensor(norm.name + ".bias", {spec.dim}, needed_by, device);
  return norm;
}

torch::Tensor Model::apply_norm(const NormSpec& spec, const Norm& norm,
                                const torch::Tensor& x) const {
  return spec.kind == NormKind::kRms ? rms_norm(x, norm, config_->norm_eps)
                                     : layer_norm(x, norm, config_->norm_eps);
}

const Model::Outer& Model::outer() const {
  if (outer_) return *outer_;
  const ModelConfig& c = *config_;
  const std::string what = "embeddings and head";
  Outer o;
  o.embed_tokens = load_tensor(spec_.tensor(spec_.embed_tokens), {c.vocab_size, embed_dim()}, what);
  if (spec_.positions) {
    o.positions =
        load_tensor(spec_.tensor(spec_.positions->name),
                    {c.max_position_embeddings + spec_.positions->offset, c.hidden_size}, what);
  }
  if (spec_.project_in) o.project_in = load_linear(*spec_.project_in, spec_.prefix, what);
  if (spec_.project_out) o.project_out = load_linear(*spec_.project_out, spec_.prefix, what);
  if (spec_.final_norm) o.final_norm = load_norm(*spec_.final_norm, spec_.prefix, what);
  outer_ = std::move(o);
  return *outer_;
}

// Loaded on first use, apart from the embeddings: the compression driver embeds its calibration
// windows and never needs the head, which can be as large as the embedding table.
const torch::Tensor& Model::lm_head_weight() const {
  const Outer& o = outer();
  if (o.lm_head.defined()) return o.lm_head;
  const ModelConfig& c = *config_;
  torch::Tensor weight;
  if (spec_.tied_lm_head) {
    weight = o.embed_tokens;
  } else if (packed_.is_packed(spec_.lm_head, store_)) {
    weight = packed_.load_dequantized(spec_.lm_head, store_, c.vocab_size, embed_dim()).to(device_);
  } else {
    weight = load_tensor(spec_.lm_head + ".weight", {c.vocab_size, embed_dim()}, "the head");
  }
  outer_->lm_head = weight;
  return outer_->lm_head;
}

torch::Tensor Model::embed(const torch::Tensor& input_ids) const {
  torch::NoGradGuard no_grad;
  TORCH_CHECK(input_ids.dim() == 2 && input_ids.scalar_type() == torch::kLong,
              "embed: input_ids must be int64 [B, T], got ", input_ids.scalar_type(), " ",
              input_ids.sizes());
  check_sequence_length(input_ids.size(1), "the input length");
  const Outer& o = outer();
  const int64_t seq = input_ids.size(1);
  if (input_ids.numel() > 0) {
    const int64_t lo = input_ids.min().item<int64_t>(), hi = input_ids.max().item<int64_t>();
    if (lo < 0 || hi >= config_->vocab_size) {
      fail_user("{}: token id {} is outside the vocabulary [0, {})", dir_, lo < 0 ? lo : hi,
                config_->vocab_size);
    }
  }
  auto x = torch::embedding(o.embed_tokens, input_ids.to(device_));
  if (o.project_in) x = run_linear(*o.project_in, x, nullptr);
  if (spec_.positions) {
    // No padding is supported, so OPT's cumsum of the attention mask is simply 0..T-1 (+ 2).
    x = x + o.positions.narrow(0, spec_.positions->offset, seq);
  }
  return x;
}

DecoderBlock Model::load_block(int index) const { return load_block(index, device_); }

DecoderBlock Model::load_block(int index, torch::Device device) const {
  if (index < 0 || index >= num_blocks()) {
    fail_internal("block index {} out of range [0, {})", index, num_blocks());
  }
  DecoderBlock block;
  block.index = index;
  block.prefix = spec_.block_name(index);
  const std::string what = fmt::format("block {}", index);
  for (const auto& norm : spec_.block_norms)
    block.norms.push_back(load_norm(norm, block.prefix, what, device));
  for (const auto& linear : spec_.block_linears)
    block.linears.push_back(load_linear(linear, block.prefix, what, device));
  for (auto& linear : block.linears) {
    auto path = lowrank_paths_.find(linear.name);
    if (path == lowrank_paths_.end()) continue;
    if (path->second.a.size(1) != linear.weight.size(1) ||
        path->second.b.size(0) != linear.weight.size(0)) {
      fail_user("the adapter's path for '{}' is [{}, {}] x [{}, {}], the linear [{}, {}]",
                linear.name, path->second.b.size(0), path->second.b.size(1), path->second.a.size(0),
                path->second.a.size(1), linear.weight.size(0), linear.weight.size(1));
    }
    linear.lowrank = LowRankPair{path->second.a.to(device), path->second.b.to(device)};
  }
  return block;
}

torch::Tensor Model::run_block(const DecoderBlock& block, const torch::Tensor& hidden,
                               const LinearHook* hook) const {
  torch::NoGradGuard no_grad;
  TORCH_CHECK(hidden.dim() == 3 && hidden.size(2) == config_->hidden_size,
              "run_block: hidden must be [B, T, ", config_->hidden_size, "], got ", hidden.sizes());
  TORCH_CHECK(block.index >= 0 && block.index < num_blocks(), "run_block: bad block index ",
              block.index);
  const BlockContext ctx{*config_, *cache_};
  return spec_.forward(ctx, block, hidden.to(block.linears.front().weight.device()), hook);
}

torch::Tensor Model::run_module(const DecoderBlock& block, const std::string& module,
                                const torch::Tensor& input, const LinearHook* hook) const {
  torch::NoGradGuard no_grad;
  const BlockContext ctx{*config_, *cache_};
  const torch::Tensor x = input.to(block.linears.front().weight.device());
  if (const ModuleSpec* spec = spec_.find_module(module)) {
    return spec->forward(ctx, block, x, hook);
  }
  for (const auto& linear : spec_.block_linears) {
    if (linear.name == module) return run_linear(block.linear(module), x, hook);
  }
  fail_internal("run_module: the {} family has no module or linear '{}'", spec_.name, module);
}

torch::Tensor Model::head(const torch::Tensor& hidden) const { return head_stages(hidden, {}); }

torch::Tensor Model::forward(const torch::Tensor& input_ids) const {
  return run_stages(input_ids, {});
}

torch::Tensor Model::head_stages(const torch::Tensor& hidden, const StageCheck& check) const {
  torch::NoGradGuard no_grad;
  const Outer& o = outer();
  auto x = hidden.to(device_);
  if (o.final_norm) {
    x = apply_norm(*spec_.final_norm, *o.final_norm, x);
    if (check && check(x, fmt::format("the final norm ({})", o.final_norm->name))) return x;
  }
  if (o.project_out) {
    x = run_linear(*o.project_out, x, nullptr);
    if (check && check(x, fmt::format("project_out ({})", o.project_out->name))) return x;
  }
  x = torch::linear(x, lm_head_weight());
  if (check) check(x, spec_.tied_lm_head ? "lm_head (tied to the embeddings)" : spec_.lm_head);
  return x;
}

torch::Tensor Model::run_stages(const torch::Tensor& input_ids, const StageCheck& check) const {
  torch::NoGradGuard no_grad;
  auto x = embed(input_ids);
  if (check && check(x, fmt::format("the embeddings ({})", spec_.tensor(spec_.embed_tokens))))
    return x;
  for (int i = 0; i < num_blocks(); ++i) {
    auto& block = blocks_[static_cast<size_t>(i)];
    if (!block) block = load_block(i);
    x = run_block(*block, x);
    if (check && check(x, spec_.block_label(i))) return x;
  }
  return head_stages(x, check);
}

std::optional<std::string> Model::first_non_finite_stage(const torch::Tensor& input_ids) const {
  std::optional<std::string> found;
  run_stages(input_ids, [&found](const torch::Tensor& output, const std::string& stage) {
    if (torch::isfinite(output).all().item<bool>()) return false;
    found = stage;
    return true;
  });
  return found;
}

void Model::check_sequence_length(int64_t length, const std::string& what) const {
  const int64_t limit = config_->max_position_embeddings;
  if (length <= limit) return;
  fail_user("{} {} is longer than the {} positions the model takes ({}: key '{}'); use at most {}",
            what, length, limit, config_->path, spec_.positions_key, limit);
}

void Model::set_lowrank_paths(std::map<std::string, LowRankPair> paths) {
  lowrank_paths_ = std::move(paths);
  release_blocks();
}

void Model::to(torch::Device device) {
  device_ = device;
  if (outer_) {
    const bool tied = spec_.tied_lm_head;
    outer_->embed_tokens = outer_->embed_tokens.to(device);
    if (outer_->positions.defined()) outer_->positions = outer_->positions.to(device);
    for (auto* linear : {&outer_->project_in, &outer_->project_out}) {
      if (!*linear) continue;
      (*linear)->weight = (*linear)->weight.to(device);
    }
    if (outer_->final_norm) {
      auto& n = *outer_->final_norm;
      if (n.weight.defined()) n.weight = n.weight.to(device);
      if (n.bias) n.bias = n.bias->to(device);
    }
    if (outer_->lm_head.defined()) {
      outer_->lm_head = tied ? outer_->embed_tokens : outer_->lm_head.to(device);
    }
  }
  for (auto& block : blocks_)
    if (block) block->to(device);
}

void Model::release_outer() { outer_.reset(); }

void Model::release_blocks() {
  for (auto& block : blocks_) block.reset();
}

int64_t Model::embed_dim() const {
  return spec_.project_in ? config_->word_embed_proj_dim : config_->hidden_size;
}

void Model::for_each_tensor(const TensorVisitor& visit) const {
  const ModelConfig& c = *config_;
  const std::vector<int64_t> embed_shape{c.vocab_size, embed_dim()};
  visit(spec_.tensor(spec_.embed_tokens), &embed_shape);
  if (spec_.positions) {
    const std::vector<int64_t> shape{c.max_position_embeddings + spec_.positions->offset,
                                     c.hidden_size};
    visit(spec_.tensor(spec_.positions->name), &shape);
  }
  auto add_weight = [&](const std::string& linear, const std::vector<int64_t>& shape) {
    if (packed_.is_packed(linear, store_)) {
      for (const auto& name : packed_.stored_tensors(linear, store_)) visit(name, nullptr);
    } else {
      visit(linear + ".weight", &shape);
    }
  };
  auto add_linear = [&](const LinearSpec& l, const std::string& prefix) {
    add_weight(prefix + l.name, stored_weight_shape(l));
    const std::vector<int64_t> bias_shape{l.out};
    if (l.bias) visit(prefix + l.name + ".bias", &bias_shape);
  };
  auto add_norm = [&](const NormSpec& n, const std::string& prefix) {
    const std::vector<int64_t> shape{n.dim};
    if (n.has_weight) visit(prefix + n.name + ".weight", &shape);
    if (n.has_bias) visit(prefix + n.name + ".bias", &shape);
  };
  if (spec_.project_in) add_linear(*spec_.project_in, spec_.prefix);
  if (spec_.project_out) add_linear(*spec_.project_out, spec_.prefix);
  for (int i = 0; i < num_blocks(); ++i) {
    const std::string prefix = spec_.block_name(i);
    for (const auto& n : spec_.block_norms) add_norm(n, prefix);
    for (const auto& l : spec_.block_linears) add_linear(l, prefix);
  }
  if (spec_.final_norm) add_norm(*spec_.final_norm, spec_.prefix);
  if (!spec_.tied_lm_head) add_weight(spec_.lm_head, embed_shape);
}

std::vector<std::string> Model::tensor_names() const {
  std::vector<std::string> names;
  for_each_tensor(
      [&names](const std::string& name, const std::vector<int64_t>*) { names.push_back(name); });
  return names;
}

void Model::check_tensor_shapes() const {
  std::vector<std::string> problems;
  for_each_tensor([&](const std::string& name, const std::vector<int64_t>* shape) {
    if (!store_.contains(name)) {
      problems.push_back(fmt::format("tensor '{}' is missing from the checkpoint", name));
    } else if (shape && store_.info(name).shape != *shape) {
      problems.push_back(shape_mismatch(name, store_.info(name).shape, *shape));
    }
  });
  if (problems.size() == 1) fail_user("{}: {}", dir_, problems.front());
  if (problems.empty()) return;
  constexpr size_t kListed = 12;  // a wrong hidden_size touches every tensor
  const size_t more = problems.size() > kListed ? problems.size() - kListed : 0;
  problems.resize(problems.size() - more);
  fail_user("{}: {} tensors disagree with config.json:\n  - {}{}", dir_, problems.size() + more,
            fmt::join(problems, "\n  - "), more ? fmt::format("\n  ... and {} more", more) : "");
}

std::vector<ModelLinear> Model::linears() const {
  std::vector<ModelLinear> linears;
  auto add = [&](const LinearSpec& l, const std::string& prefix, int block) {
    linears.push_back({prefix + l.name, l.out, l.in, block, false});
  };
  if (spec_.project_in) add(*spec_.project_in, spec_.prefix, -1);
  if (spec_.project_out) add(*spec_.project_out, spec_.prefix, -1);
  for (int i = 0; i < num_blocks(); ++i)
    for (const auto& l : spec_.block_linears) add(l, spec_.block_name(i), i);
  linears.push_back({spec_.lm_head, config_->vocab_size, embed_dim(), -1, spec_.tied_lm_head});
  return linears;
}

torch::Tensor Model::load_linear_weight(const std::string& name) const {
  const std::string what = "the original weight of " + name;
  auto from = [&](const LinearSpec& spec, const std::string& prefix) -> std::optional<Linear> {
    if (prefix + spec.name != name) return std::nullopt;
    return load_linear(spec, prefix, what);
  };
  std::optional<Linear> linear;
  for (int i = 0; i < num_blocks() && !linear; ++i) {
    const std::string prefix = spec_.block_name(i);
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    for (const auto& spec : spec_.block_linears)
      if (!linear) linear = from(spec, prefix);
  }
  if (!linear && spec_.project_in) linear = from(*spec_.project_in, spec_.prefix);
  if (!linear && spec_.project_out) linear = from(*spec_.project_out, spec_.prefix);
  if (linear) return linear->weight;
  if (name == spec_.lm_head) return lm_head_weight().to(device_);
  fail_internal("load_linear_weight: '{}' is not a linear of the {} model", name,
                config_->model_type);
}

int64_t Model::parameter_count() const {
  int64_t count = 0;
  std::set<std::string> packed_tensors;
  for (const auto& linear : linears()) {
    if (linear.tied || !packed_.is_packed(linear.name, store_)) continue;
    count += linear.out * linear.in;
    for (auto& name : packed_.stored_tensors(linear.name, store_))
      packed_tensors.insert(std::move(name));
  }
  for (const auto& name : tensor_names()) {
    if (packed_tensors.count(name)) continue;
    if (!store_.contains(name))
      fail_user("{}: tensor '{}' is missing from the checkpoint", dir_, name);
    int64_t numel = 1;
    for (int64_t d : store_.info(name).shape) numel *= d;
    count += numel;
  }
  return count;
}

}  // namespace presso
