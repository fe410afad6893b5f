// Samplers (kiln/text/sampler.h), the generation loop (kiln/text/generate.h) and the `kiln
// generate` / `kiln tokenize` / `kiln chat` commands.
//
// Logits processors are checked against references written here from their definitions (as
// transformers' warpers define them) on fresh random logits; sampling against the softmax
// distribution it should follow. The loop and the commands run SmolLM2-135M-Instruct (skipped,
// visibly, when its GGUF is absent) and are checked against the model called directly and
// against transformers' greedy tokens (tests/fixtures/smollm2_reference.safetensors).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <numeric>

#include "kiln/io/safetensors.h"
#include "kiln/kiln.h"
#include "kiln/text/generate.h"
#include "kiln/text/sampler.h"
#include "file_utils.h"
#include "model_utils.h"
#include "test_utils.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;
using text::Sampler;
using text::SamplerOptions;

constexpr double kInf = std::numeric_limits<double>::infinity();

std::vector<double> row_of(const array& a) { return test::to_doubles(a); }

// Random logits (rows, vocab) with distinct values.
std::pair<array, std::vector<double>> random_logits(int64_t rows, int64_t vocab) {
  return test::random_array({rows, vocab}, float32, -4, 4);
}

// Indices of a row sorted by value, largest first.
std::vector<int> order_desc(const std::vector<double>& v, size_t begin, size_t n) {
  std::vector<int> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return v[begin + a] > v[begin + b]; });
  return idx;
}

TEST(Sampler, ProcessorsMatchTheirDefinitions) {
  const int64_t rows = 3, V = 50;
  for (Device d : test::devices()) {
    auto [logits_cpu, lv] = random_logits(rows, V);
    array logits = copy(logits_cpu, d);
    // top-k: the k largest stay.
    for (int k : {1, 5, 49}) {
      auto out = row_of(text::top_k(k)(logits, {}));
      for (int64_t r = 0; r < rows; ++r) {
        auto ord = order_desc(lv, r * V, V);
        for (int i = 0; i < V; ++i) {
          double want = i < k ? lv[r * V + ord[i]] : -kInf;
          EXPECT_EQ(out[r * V + ord[i]], want) << "top_k " << k << " row " << r << " rank " << i;
        }
      }
    }
    // top-p: the smallest most-likely set whose probability reaches p.
    for (double p : {0.05, 0.5, 0.9}) {
      auto out = row_of(text::top_p(static_cast<float>(p))(logits, {}));
      for (int64_t r = 0; r < rows; ++r) {
        auto ord = order_desc(lv, r * V, V);
        double z = 0;
        for (int i = 0; i < V; ++i) z += std::exp(lv[r * V + i]);
        double mass = 0;
        for (int i = 0; i < V; ++i) {
          bool keep = mass < p;
          mass += std::exp(lv[r * V + ord[i]]) / z;
          // The boundary token is uncertain within float32 rounding of the cumulative sum.
          if (std::abs(mass - p) < 1e-5) continue;
          EXPECT_EQ(out[r * V + ord[i]], keep ? lv[r * V + ord[i]] : -kInf) << "top_p " << p << " rank " << i;
        }
      }
    }
    // min-p: tokens at least min_p times as likely as the best.
    for (double mp : {0.01, 0.2}) {
      auto out = row_of(text::min_p(static_cast<float>(mp))(logits, {}));
      for (int64_t r = 0; r < rows; ++r) {
        double mx = *std::max_element(lv.begin() + r * V, lv.begin() + (r + 1) * V);
        for (int i = 0; i < V; ++i) {
          double x = lv[r * V + i];
          if (std::abs(x - (mx + std::log(mp))) < 1e-5) continue;
          EXPECT_EQ(out[r * V + i], x >= mx + std::log(mp) ? x : -kInf);
        }
      }
    }
    // Temperature divides.
    auto hot = row_of(text::temperature(0.5f)(logits, {}));
    for (int64_t i = 0; i < rows * V; ++i) EXPECT_NEAR(hot[i], lv[i] / 0.5, 1e-5);
    // Repetition penalty (CTRL): seen tokens' positive logits divided, negative multiplied, once
    // however often they were seen.
    std::vector<int32_t> history{3, 7, 3, 11, 49};
    auto pen = row_of(text::repetition_penalty(1.5f, 0)(logits, history));
    for (int64_t r = 0; r < rows; ++r) {
      for (int i = 0; i < V; ++i) {
        double x = lv[r * V + i];
        bool seen = std::find(history.begin(), history.end(), i) != history.end();
        double want = seen ? (x > 0 ? x / 1.5 : x * 1.5) : x;
        EXPECT_NEAR(pen[r * V + i], want, 1e-5) << "token " << i;
      }
    }
    // A window of 2 sees only the last two tokens (11 and 49).
    auto win = row_of(text::repetition_penalty(2.0f, 2)(logits, history));
    EXPECT_EQ(win[3], lv[3]);
    EXPECT_NEAR(win[49], lv[49] > 0 ? lv[49] / 2 : lv[49] * 2, 1e-5);
  }
  test::note_gpu_skip();
}

TEST(Sampler, GreedyIsArgmaxAndSamplingFollowsTheSoftmax) {
  for (Device d : test::devices()) {
    auto [l, lv] = random_logits(4, 30);
    array logits = copy(l, d);
    Sampler greedy;
    auto g = greedy(logits).to_vector<int32_t>();
    for (int r = 0; r < 4; ++r) {
      EXPECT_EQ(g[r], std::max_element(lv.begin() + r * 30, lv.begin() + (r + 1) * 30) - (lv.begin() + r * 30));
    }
    // 4000 draws at temperature 0.7 from one row: frequencies within 5 standard errors.
    const int V = 8, draws = 4000;
    auto [one, ov] = test::random_array({1, V}, float32, -1, 1);
    array many = broadcast_to(copy(one, d), {draws, V});
    SamplerOptions o;
    o.temperature = 0.7f;
    o.seed = test::rng()();
    Sampler s(o);
    auto tokens = s(many).to_vector<int32_t>();
    std::vector<double> p(V);
    double z = 0;
    for (int i = 0; i < V; ++i) z += p[i] = std::exp(ov[i] / 0.7);
    std::vector<int> count(V, 0);
    for (int t : tokens) {
      ASSERT_GE(t, 0);
      ASSERT_LT(t, V);
      ++count[t];
    }
    for (int i = 0; i < V; ++i) {
      double pi = p[i] / z, se = std::sqrt(pi * (1 - pi) / draws);
      EXPECT_NEAR(count[i] / double(draws), pi, 5 * se + 1e-3) << "token " << i;
    }
    // top-k 2 never draws outside the two best.
    o.top_k = 2;
    Sampler k2(o);
    auto ord = order_desc(ov, 0, V);
    for (int t : k2(many).to_vector<int32_t>()) EXPECT_TRUE(t == ord[0] || t == ord[1]) << t;
  }
}

TEST(Sampler, SeedsAreReproducible) {
  auto [l, lv] = random_logits(1, 100);
  auto draw = [&](uint64_t seed) {
    SamplerOptions o;
    o.temperature = 1.0f;
    o.seed = seed;
    Sampler s(o);
    std::vector<int32_t> out;
    for (int i = 0; i < 20; ++i) out.push_back(s(l).item<int32_t>());
    return out;
  };
  uint64_t seed = test::rng()();
  EXPECT_EQ(draw(seed), draw(seed));
  EXPECT_NE(draw(seed), draw(seed + 1));
}

TEST(Sampler, Errors) {
  SamplerOptions o;
  o.temperature = -1;
  KILN_EXPECT_THROW_MSG(Sampler{o}, ValueError, "temperature");
  o = {};
  o.top_p = 0;
  KILN_EXPECT_THROW_MSG(Sampler{o}, ValueError, "top_p");
  o = {};
  o.min_p = 1;
  KILN_EXPECT_THROW_MSG(Sampler{o}, ValueError, "min_p");
  o = {};
  o.repetition_penalty = 0;
  KILN_EXPECT_THROW_MSG(Sampler{o}, ValueError, "repetition_penalty");
  Sampler s;
  KILN_EXPECT_THROW_MSG(s(zeros({2, 3, 4, 5})), ValueError, "(B, vocab)");
}

// ---- the generation loop and the commands, with SmolLM2 ----

const text::LanguageModel& smollm2() {
  static text::LanguageModel lm = text::load_language_model(test::smollm2_path(), float32);
  return lm;
}

#define NEED_SMOLLM2()                                                                              \
  if (test::smollm2_path().empty()) GTEST_SKIP() << "SmolLM2 GGUF not found (scripts/get_models.sh fetches it)"

std::vector<int32_t> as_int32(const array& a) { return astype(a, int32).to_vector<int32_t>(); }

TEST(Generate, GreedyMatchesTransformersAndStreamsTheSameText) {
  NEED_SMOLLM2();
  const auto& lm = smollm2();
  auto ref = io::load_safetensors((fs::path(__FILE__).parent_path() / "fixtures" / "smollm2_reference.safetensors").string());
  auto prompt = as_int32(ref.at("ids"));
  text::GenerationOptions o;
  o.max_tokens = 32;
  o.sampling.temperature = 0;
  o.stop_at_eos = false;
  std::string streamed;
  std::vector<int32_t> tokens;
  auto stats = text::generate(lm, prompt, o, [&](const std::string& s) { streamed += s; return true; }, nullptr, &tokens);
  EXPECT_EQ(tokens, as_int32(ref.at("greedy")));
  EXPECT_EQ(streamed, lm.tokenizer->decode(tokens));
  EXPECT_EQ(stats.generated_tokens, 32);
  EXPECT_EQ(stats.prompt_tokens, static_cast<int64_t>(prompt.size()));
  EXPECT_EQ(stats.finish_reason, "length");
  EXPECT_GT(stats.prompt_tps(), 0);
  EXPECT_GT(stats.peak_memory, 0u);
}

TEST(Generate, StopStringsCallbacksAndCacheContinuation) {
  NEED_SMOLLM2();
  const auto& lm = smollm2();
  auto prompt = lm.tokenizer->encode("The capital of France is Paris. The capital of Germany is", true);
  text::GenerationOptions o;
  o.max_tokens = 24;
  o.sampling.temperature = 0;
  o.stop_at_eos = false;
  std::vector<int32_t> all;
  text::generate(lm, prompt, o, [](const std::string&) { return true; }, nullptr, &all);
  std::string full = lm.tokenizer->decode(all);
  ASSERT_GT(full.size(), 12u);

  // A stop string from the middle of the text: the output is exactly what precedes it.
  std::string stop = full.substr(full.size() / 2, 4);
  o.stop = {stop};
  std::string out;
  auto st = text::generate(lm, prompt, o, [&](const std::string& s) { out += s; return true; });
  EXPECT_EQ(out, full.substr(0, full.find(stop)));
  EXPECT_EQ(st.finish_reason, "stop");

  // The callback ends it.
  o.stop.clear();
  int pieces = 0;
  st = text::generate(lm, prompt, o, [&](const std::string&) { return ++pieces < 3; });
  EXPECT_EQ(st.finish_reason, "callback");
  EXPECT_EQ(pieces, 3);

  // 10 tokens, then 14 more continuing the cache: the same tokens as 24 at once.
  models::KVCache cache = lm.model->make_cache();
  std::vector<int32_t> first, second;
  o.max_tokens = 10;
  text::generate(lm, prompt, o, [](const std::string&) { return true; }, &cache, &first);
  EXPECT_EQ(cache.offset(), static_cast<int64_t>(prompt.size()) + 9);  // all but the last token read
  o.max_tokens = 14;
  text::generate(lm, {first.back()}, o, [](const std::string&) { return true; }, &cache, &second);
  first.insert(first.end(), second.begin(), second.end());
  EXPECT_EQ(first, all);

  // Bad input.
  KILN_EXPECT_THROW_MSG(text::generate(lm, {}, o, [](const std::string&) { return true; }), ValueError,
                        "no tokens");
  KILN_EXPECT_THROW_MSG(text::generate(lm, {1 << 30}, o, [](const std::string&) { return true; }), ValueError,
                        "outside the vocabulary");
  o.stop = {""};
  KILN_EXPECT_THROW_MSG(text::generate(lm, prompt, o, [](const std::string&) { return true; }), ValueError,
                        "stop strings");
}

TEST(Generate, ChatTemplateAndStopTokensComeFromTheModel) {
  NEED_SMOLLM2();
  const auto& lm = smollm2();
  EXPECT_NE(lm.chat_template.find("<|im_start|>"), std::string::npos);
  EXPECT_NE(std::find(lm.stop_ids.begin(), lm.stop_ids.end(), lm.tokenizer->token_to_id("<|im_end|>")),
            lm.stop_ids.end());
  KILN_EXPECT_THROW_MSG(text::load_language_model("/nonexistent/model.gguf"), io::FileError, "/nonexistent/model.gguf");
}

// ---- the commands ----

struct CliRun {
  int status = -1;
  std::string out, err;
};

CliRun run_cli(const std::string& args, const std::string& input = "") {
  test::TempDir dir("kiln_cli");
  test::write_file(dir.file("in.txt"), input);
  std::string cmd = std::string(KILN_CLI_PATH) + " " + args + " < '" + dir.file("in.txt") + "' > '" +
                    dir.file("out.txt") + "' 2> '" + dir.file("err.txt") + "'";
  CliRun r;
  int rc = std::system(cmd.c_str());
  r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  r.out = test::read_file(dir.file("out.txt"));
  r.err = test::read_file(dir.file("err.txt"));
  return r;
}

TEST(Commands, GenerateTokenizeAndChat) {
  NEED_SMOLLM2();
  const std::string file = "--model '" + test::smollm2_path() + "'";
  const std::string model = file + " --device cpu";
  const auto& lm = smollm2();

  // generate --raw with greedy decoding prints what the library generates, then statistics.
  std::string prompt = "Once upon a time";
  CliRun g = run_cli("generate " + model + " --raw --temp 0 --max-tokens 12 --prompt '" + prompt + "'");
  ASSERT_EQ(g.status, 0) << g.err;
  text::GenerationOptions o;
  o.max_tokens = 12;
  o.sampling.temperature = 0;
  std::string want;
  text::generate(lm, lm.tokenizer->encode(prompt, true), o, [&](const std::string& s) { want += s; return true; });
  EXPECT_EQ(g.out, want + "\n");
  for (const char* field : {"prompt:", "generation:", "tokens/s", "time to first token", "peak memory"}) {
    EXPECT_NE(g.err.find(field), std::string::npos) << field << " missing in: " << g.err;
  }

  // tokenize and --decode.
  std::string text = "Hello world, 你好 🌍\n  spaces\ttab";
  CliRun t = run_cli("tokenize " + file, text);
  ASSERT_EQ(t.status, 0) << t.err;
  auto ids = lm.tokenizer->encode(text);
  std::string joined;
  for (size_t i = 0; i < ids.size(); ++i) joined += (i ? " " : "") + std::to_string(ids[i]);
  EXPECT_EQ(t.out, joined + "\n");
  CliRun back = run_cli("tokenize " + file + " --decode", t.out);
  EXPECT_EQ(back.out, text);

  // chat: two turns from standard input, each answered.
  CliRun c = run_cli("chat " + model + " --temp 0 --max-tokens 8", "Hi!\nWhat is 2+2?\n");
  ASSERT_EQ(c.status, 0) << c.err;
  EXPECT_GE(std::count(c.out.begin(), c.out.end(), '\n'), 2) << c.out;

  // Clear errors.
  CliRun e1 = run_cli("generate " + model);
  EXPECT_EQ(e1.status, 1);
  EXPECT_NE(e1.err.find("--prompt is required"), std::string::npos) << e1.err;
  CliRun e2 = run_cli("generate " + model + " --prompt x --temp hot");
  EXPECT_NE(e2.err.find("--temp needs a number"), std::string::npos) << e2.err;
  CliRun e3 = run_cli("generate --model /nonexistent.gguf --prompt x");
  EXPECT_NE(e3.err.find("/nonexistent.gguf"), std::string::npos) << e3.err;
  CliRun e4 = run_cli("tokenize " + file + " --decode", "12 abc");
  EXPECT_NE(e4.err.find("integer ids"), std::string::npos) << e4.err;
  CliRun e5 = run_cli("generate " + model + " --prompt x --frobnicate");
  EXPECT_NE(e5.err.find("unknown option '--frobnicate'"), std::string::npos) << e5.err;
}

}  // namespace
}  // namespace kiln
