// LLM benchmark: the Llama-3.1-8B shape with random bfloat16 weights, batch 1, on the default
// device: read bandwidth (the decode floor), prefill tokens/s, decode tokens/s, peak memory, and
// the attention kernel alone. Prints one "key value" line per figure for bench/llm.py, which
// puts them beside PyTorch's measured in the same run.
//
//   llm_bench [--layers N] [--prompt N] [--gen N] [--skip-model] [--skip-attention] [--profile-prefill] [--profile-decode]
// --profile-prefill: only the prefill, once more after its timings between profiler_start and
// profiler_stop, for `ncu --profile-from-start off` (bench/profile_kernels.py); --profile-decode
// likewise one eager decode step after the prompt.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "bench/bench_util.h"
#include "kiln/kiln.h"
#include "kiln/backend/kernels.h"
#include "kiln/models/llama.h"

using namespace kiln;

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void report(const char* key, double v) { std::printf("%s %.6g\n", key, v), std::fflush(stdout); }

models::LlamaConfig llama31_8b(int layers) {
  models::LlamaConfig c;
  c.vocab_size = 128256;
  c.hidden_size = 4096;
  c.intermediate_size = 14336;
  c.num_hidden_layers = layers;
  c.num_attention_heads = 32;
  c.num_key_value_heads = 8;
  c.head_dim = 128;
  c.rms_norm_eps = 1e-5f;
  c.rope_theta = 500000.0f;
  c.rope_scaling = models::LlamaConfig::RopeScaling{};
  c.max_position_embeddings = 131072;
  return c;
}

void bench_attention() {
  const int H = 32, D = 128;
  float scale = 1.0f / std::sqrt(float(D));
  for (int kv : {32, 8, 1}) {
    for (int64_t Lk : {4096, 32768}) {
      if (Lk == 32768 && kv != 8) continue;
      array q = random::normal({1, H, 1, D}, bfloat16);
      array k = random::normal({1, kv, Lk, D}, bfloat16);
      array v = random::normal({1, kv, Lk, D}, bfloat16);
      eval({q, k, v});
      double t = bench::time_median([&] { fast::scaled_dot_product_attention(q, k, v, scale).eval(); }, 7, 50);
      std::string key = "attn_decode_kv" + std::to_string(kv) + "_L" + std::to_string(Lk) + "_us";
      report(key.c_str(), t * 1e6);
      if (default_device().type == Device::gpu) {
        // The GPU's time: kDecodeChain calls, each on the last one's output, replayed as one CUDA
        // graph, so the graph's launch and the copy of its output are spread over them.
        constexpr int kDecodeChain = 16;
        CapturedFunction f([&](const std::vector<array>&) {
          array x = q;
          for (int i = 0; i < kDecodeChain; ++i) x = fast::scaled_dot_product_attention(x, k, v, scale);
          return std::vector<array>{x};
        });
        f({});
        double tg = bench::time_median([&] { f({}); }, 7, 10) / kDecodeChain;
        std::string gkey = "attn_decode_graph_kv" + std::to_string(kv) + "_L" + std::to_string(Lk) + "_us";
        report(gkey.c_str(), tg * 1e6);
      }
    }
  }
  const int64_t L = 4096;
  for (int kv : {32, 8, 1}) {
    array q = random::normal({1, H, L, D}, bfloat16);
    array k = random::normal({1, kv, L, D}, bfloat16);
    array v = random::normal({1, kv, L, D}, bfloat16);
    eval({q, k, v});
    double t = bench::time_median([&] { fast::scaled_dot_product_attention(q, k, v, scale, {}, true).eval(); }, 5, 3);
    double flops = 4.0 * H * L * L * D / 2;  // causal: half the score matrix
    std::string key = "attn_prefill_kv" + std::to_string(kv) + "_tflops";
    report(key.c_str(), flops / t / 1e12);
  }
}

void bench_model(int layers, int prompt, int gen, bool profile_prefill, bool profile_decode) {
  // Read bandwidth: a 4 GiB sum reads every byte once.
  {
    array big = ones({int64_t{1} << 31}, bfloat16);
    big.eval();
    double t = bench::time_median([&] { sum(big, false).eval(); }, 5, 2);
    report("read_bandwidth_gbs", double(big.nbytes()) / t / 1e9);
  }
  auto t_load = Clock::now();
  models::LlamaForCausalLM model(llama31_8b(layers), bfloat16);
  model.eval();
  model.fuse_projections();
  synchronize();
  report("init_seconds", since(t_load));
  size_t weights = 0, embed = 0;
  for (auto& [name, p] : model.parameters()) {
    weights += p.nbytes();
    if (name == "model.embed_tokens.weight") embed = p.nbytes();
  }
  report("weights_gb", weights / 1e9);
  report("decode_bytes_gb", (weights - embed) / 1e9);

  models::KVCache cache = model.make_cache();
  cache.reserve(prompt + gen + 8);
  array ids = random::randint(0, 128256, {1, prompt}, int32);
  ids.eval();
  reset_peak_memory();
  // Prefill: median of 7 after a first run (the cache is rewound each time); separate runs of
  // this benchmark have differed by 1.5%.
  std::vector<double> pt;
  for (int r = 0; r < 8; ++r) {
    cache.clear();
    synchronize();
    auto t0 = Clock::now();
    array y = argmax(model(ids, &cache, true), -1);
    y.eval();
    synchronize();
    if (r > 0) pt.push_back(since(t0));
  }
  std::sort(pt.begin(), pt.end());
  report("prefill_tokens_per_s", prompt / pt[pt.size() / 2]);
  report("time_to_first_token_ms", pt[pt.size() / 2] * 1e3);
  if (profile_prefill) {
    cache.clear();
    synchronize();
    profiler_start();
    argmax(model(ids, &cache, true), -1).eval();
    synchronize();
    profiler_stop();
    return;
  }

  // Decode: greedy, each step's graph built while the previous one runs (as kiln generate).
  auto step = [&](const array& tok) { return astype(argmax(model(reshape(tok, {1, 1}), &cache, true), -1), int32); };
  cache.clear();
  array y = astype(argmax(model(ids, &cache, true), -1), int32);
  y.eval();
  synchronize();
  // Host cost of one step: building its graph, and how many kernels it launches.
  {
    auto tb = Clock::now();
    array probe = step(y);
    report("graph_build_us_per_token", since(tb) * 1e6);
    size_t k0 = kernel_launches(Backend::gpu) + kernel_launches(Backend::cpu);
    probe.eval();
    report("kernels_per_token", double(kernel_launches(Backend::gpu) + kernel_launches(Backend::cpu) - k0));
    synchronize();
    y = probe;
  }
  if (profile_decode) {
    array probe = step(y);
    synchronize();
    profiler_start();
    probe.eval();
    synchronize();
    profiler_stop();
    return;
  }
  auto t0 = Clock::now();
  for (int i = 0; i < gen; ++i) {
    array next = step(y);
    async_eval({next});
    (void)y.item<int32_t>();
    y = next;
  }
  (void)y.item<int32_t>();
  double td = since(t0);
  report("decode_tokens_per_s", gen / td);
  report("decode_ms_per_token", td / gen * 1e3);

  // The same steps replayed as one CUDA graph each, positions in arrays (text::generate's way
  // on the GPU), from the same point of the cache.
  if (default_device().type == Device::gpu) {
    cache.trim(prompt + 1);
    int64_t pos = cache.offset();
    CapturedFunction graph([&](const std::vector<array>& in) {
      return std::vector<array>{model.decode_step(in[0], in[1], in[2], cache)};
    });
    auto gstep = [&](const array& tok) {
      array logits = graph({reshape(tok, {1, 1}), array(static_cast<int32_t>(pos)),
                            model.decode_mask(pos, cache.capacity())})[0];
      cache.set_offset(++pos);
      return astype(argmax(logits, -1), int32);
    };
    for (int i = 0; i < 2; ++i) y = gstep(y);  // eager, then captured
    (void)y.item<int32_t>();
    auto tg = Clock::now();
    const int steps = gen - 4;
    for (int i = 0; i < steps; ++i) {
      array next = gstep(y);
      (void)y.item<int32_t>();
      y = next;
    }
    (void)y.item<int32_t>();
    report("decode_graph_tokens_per_s", steps / since(tg));
  }
  report("kv_cache_gb", cache.nbytes() / 1e9);
  report("peak_memory_gb", get_peak_memory() / 1e9);
}

}  // namespace

int main(int argc, char** argv) {
  int layers = 32, prompt = 2048, gen = 128;
  bool model = true, attention = true, profile_prefill = false, profile_decode = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--layers" && i + 1 < argc) layers = std::atoi(argv[++i]);
    else if (a == "--prompt" && i + 1 < argc) prompt = std::atoi(argv[++i]);
    else if (a == "--gen" && i + 1 < argc) gen = std::atoi(argv[++i]);
    else if (a == "--skip-model") model = false;
    else if (a == "--skip-attention") attention = false;
    else if (a == "--profile-prefill") profile_prefill = true;
    else if (a == "--profile-decode") profile_decode = true;
    else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  std::printf("device %s\n", default_device().type == Device::gpu ? "gpu" : "cpu");
  if (attention) bench_attention();
  if (model) bench_model(layers, prompt, gen, profile_prefill, profile_decode);
  return 0;
}
