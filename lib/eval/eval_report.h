// The JSON report of `presso eval` (schema below) and its readable summary.
//
// Schema version 1 (the fields a gate reads; others are informative):
//   schema_version   1
//   ppl, nll_sum, tokens_scored, windows, seqlen
//   protocol         {id, seqlen, windows, description}
//   fingerprints     {model, data, tokens}: SHA-256 of the checkpoint (fingerprint.h), of the
//                    text file, of the scored token ids
//   mean_kl, mean_kl_uncertainty, median_kl, p90_kl, p95_kl, p99_kl, max_kl, top1_agreement,
//   top1_agreement_uncertainty, ln_ppl_ratio, ln_ppl_ratio_uncertainty, kl_positions
//                    with a KL reference; kl_reference {source, path, fingerprint, top_k}
//   versions         {presso, commit, modified, libtorch}
//   baseline, gate   with a gate: the baseline's ppl (and mean_kl) and the verdict
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "lib/eval/kl_divergence.h"

namespace presso {

constexpr int kEvalReportSchemaVersion = 1;
// The protocol of DESIGN.md; a new id for any change that moves the numbers.
constexpr const char* kEvalProtocolId = "presso-ppl-v1";
constexpr const char* kEvalProtocolDescription =
    "whole text tokenized without special tokens; non-overlapping windows of seqlen tokens from "
    "the start; no BOS; ppl = exp(sum NLL of tokens 1..seqlen-1 / count); KL over the "
    "reference's top-k tokens plus one bucket for the rest";

// Adds mean_kl … kl_positions to `report`.
void add_kl_summary(nlohmann::json& report, const KlSummary& summary);

// The lines `presso eval` prints: ppl, and with KL a table as llama-perplexity prints it.
std::string eval_summary_text(const nlohmann::json& report);

}  // namespace presso
