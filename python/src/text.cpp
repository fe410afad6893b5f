// kiln.text: language models (kiln/text/generate.h), their tokenizers and chat templates, and
// generation as a Python iterator that streams text while a worker thread decodes.
#include <nanobind/stl/shared_ptr.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <thread>

#include "common.h"
#include "kiln/text/chat_template.h"
#include "kiln/text/generate.h"

namespace kiln_py {

namespace {

using kiln::text::LanguageModel;
using kiln::text::Tokenizer;

// Text that may end inside a character (a token's bytes) as str, broken bytes as U+FFFD.
nb::str to_str(const std::string& s) {
  PyObject* o = PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "replace");
  if (!o) throw nb::python_error();
  return nb::steal<nb::str>(o);
}

std::string apply_chat_template(const LanguageModel& lm, const nb::list& messages, bool add_generation_prompt) {
  if (lm.chat_template.empty()) kiln::fail<kiln::ValueError>("[python] this model has no chat template");
  std::vector<kiln::text::ChatMessage> msgs;
  for (nb::handle m : messages) {
    if (!nb::isinstance<nb::dict>(m))
      kiln::fail<kiln::TypeError>("[python] each message must be a dict with 'role' and 'content'");
    nb::dict d = nb::borrow<nb::dict>(m);
    if (!d.contains("role") || !d.contains("content"))
      kiln::fail<kiln::ValueError>("[python] each message needs the keys 'role' and 'content'");
    msgs.push_back({nb::cast<std::string>(d["role"]), nb::cast<std::string>(d["content"])});
  }
  return kiln::text::ChatTemplate(lm.chat_template).apply(msgs, {add_generation_prompt, lm.bos_token, lm.eos_token});
}

// One run of text::generate on a worker thread. The worker never touches Python: it fills a queue
// of pieces that __next__ empties, waiting with the GIL released. Dropping the iterator early
// asks the worker to stop after the current token and waits for it.
class Generation {
 public:
  Generation(nb::object owner, const LanguageModel& lm, std::vector<int32_t> prompt,
             kiln::text::GenerationOptions options)
      : owner_(std::move(owner)) {
    kiln::text::Sampler check(options.sampling);  // out-of-range options fail here, not in the worker
    worker_ = std::thread([this, &lm, prompt = std::move(prompt), options = std::move(options)] {
      std::vector<int32_t> tokens;
      kiln::text::GenerationStats stats;
      std::exception_ptr error;
      try {
        stats = kiln::text::generate(
            lm, prompt, options,
            [this](const std::string& piece) {
              std::lock_guard<std::mutex> lock(mu_);
              queue_.push_back(piece);
              cv_.notify_one();
              return !cancel_;
            },
            nullptr, &tokens);
      } catch (...) {
        error = std::current_exception();
      }
      std::lock_guard<std::mutex> lock(mu_);
      stats_ = stats;
      tokens_ = std::move(tokens);
      error_ = error;
      done_ = true;
      cv_.notify_one();
    });
  }

  ~Generation() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancel_ = true;
    }
    if (worker_.joinable()) worker_.join();
  }

  // The next piece; StopIteration at the end, the worker's exception when it failed.
  nb::str next() {
    using namespace std::chrono_literals;
    std::string piece;
    for (;;) {
      bool ready, got = false;
      {
        nb::gil_scoped_release release;
        std::unique_lock<std::mutex> lock(mu_);
        // Short waits, so that Ctrl-C reaches Python while the model is busy.
        ready = cv_.wait_for(lock, 100ms, [&] { return !queue_.empty() || done_; });
        if (ready && !queue_.empty()) {
          piece = std::move(queue_.front());
          queue_.pop_front();
          got = true;
        }
      }
      if (got) return to_str(piece);
      if (ready) break;
      if (PyErr_CheckSignals() != 0) {
        std::lock_guard<std::mutex> lock(mu_);
        cancel_ = true;
        throw nb::python_error();
      }
    }
    if (error_) {
      std::exception_ptr e = error_;
      error_ = nullptr;  // raised once; later calls end the iteration
      std::rethrow_exception(e);
    }
    throw nb::stop_iteration();
  }

  // None until the generation has finished.
  nb::object stats(double load_seconds) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!done_) return nb::none();
    nb::dict d;
    d["prompt_tokens"] = stats_.prompt_tokens;
    d["generated_tokens"] = stats_.generated_tokens;
    d["prompt_seconds"] = stats_.prompt_seconds;
    d["generation_seconds"] = stats_.generation_seconds;
    d["prompt_tps"] = stats_.prompt_tps();
    d["generation_tps"] = stats_.generation_tps();
    d["peak_memory"] = stats_.peak_memory;
    d["finish_reason"] = stats_.finish_reason;
    d["load_seconds"] = load_seconds;
    return d;
  }

  nb::object tokens() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!done_) return nb::none();
    return nb::cast(tokens_);
  }

  bool done() {
    std::lock_guard<std::mutex> lock(mu_);
    return done_;
  }

  const nb::object& owner() const { return owner_; }

 private:
  nb::object owner_;  // the LanguageModel, kept alive while the worker reads it
  std::thread worker_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  bool done_ = false, cancel_ = false;
  kiln::text::GenerationStats stats_;
  std::vector<int32_t> tokens_;
  std::exception_ptr error_;
};

}  // namespace

void init_text(nb::module_& parent) {
  nb::module_ m = parent.def_submodule("text", "Language models: loading, tokenizers, chat templates, generation.");

  nb::class_<Tokenizer>(m, "Tokenizer", "A language model's tokenizer (byte-level BPE or SentencePiece).")
      .def(
          "encode",
          [](const Tokenizer& t, const std::string& text, bool add_special) { return t.encode(text, add_special); },
          "text"_a, "add_special"_a = false,
          "Token ids of text; add_special adds BOS/EOS where the model asks for them.")
      .def(
          "decode", [](const Tokenizer& t, const std::vector<int32_t>& ids) { return to_str(t.decode(ids)); }, "ids"_a,
          "The text of the ids (bytes that are not valid UTF-8 become U+FFFD).")
      .def(
          "token_bytes",
          [](const Tokenizer& t, int32_t id) {
            std::string b = t.token_bytes(id);
            return nb::bytes(b.data(), b.size());
          },
          "id"_a, "The bytes of one token.")
      .def_prop_ro("vocab_size", &Tokenizer::vocab_size)
      .def_prop_ro("bos_id", &Tokenizer::bos_id, "-1 when the model has none.")
      .def_prop_ro("eos_id", &Tokenizer::eos_id)
      .def_prop_ro("add_bos", &Tokenizer::add_bos, "Whether encode(add_special=True) starts with BOS.");

  nb::class_<LanguageModel>(m, "LanguageModel", "A Llama-family model with its tokenizer and chat template.")
      .def_prop_ro("tokenizer", [](const LanguageModel& lm) { return lm.tokenizer; })
      .def_ro("chat_template", &LanguageModel::chat_template, "The Jinja template; empty when the model has none.")
      .def_ro("bos_token", &LanguageModel::bos_token)
      .def_ro("eos_token", &LanguageModel::eos_token)
      .def_ro("stop_ids", &LanguageModel::stop_ids, "End-of-sequence ids (EOS, end-of-turn).")
      .def_ro("load_seconds", &LanguageModel::load_seconds)
      .def("apply_chat_template", &apply_chat_template, "messages"_a, "add_generation_prompt"_a = true,
           "Renders [{'role': ..., 'content': ...}, ...] with the model's chat template.");

  m.def(
      "load_language_model",
      [](const std::string& path, std::optional<kiln::Dtype> dtype) {
        nb::gil_scoped_release release;
        return kiln::text::load_language_model(path, dtype);
      },
      "path"_a, "dtype"_a = nb::none(),
      "A GGUF file or a Hugging Face directory (config.json, safetensors, tokenizer.json) as a LanguageModel,\n"
      "its weights in dtype: by default bfloat16 on a GPU or a CPU with AVX2/FMA/F16C, float32 elsewhere.");

  nb::class_<Generation>(m, "Generation",
                         "Text as it is generated: iterate for the pieces; stats and tokens once it has finished.")
      .def("__iter__", [](nb::handle self) { return self; })
      .def("__next__", &Generation::next)
      .def_prop_ro(
          "stats",
          [](Generation& g) { return g.stats(nb::cast<const LanguageModel&>(g.owner()).load_seconds); },
          "prompt_tokens, generated_tokens, prompt_tps, generation_tps, peak_memory, finish_reason, ... (None "
          "before the end).")
      .def_prop_ro("tokens", &Generation::tokens, "The generated token ids (None before the end).")
      .def_prop_ro("done", &Generation::done);

  m.def(
      "generate_ids",
      [](nb::object lm, std::vector<int32_t> prompt, int max_tokens, float temperature, int top_k, float top_p,
         float min_p, float repetition_penalty, int repetition_window, uint64_t seed,
         std::vector<std::string> stop, bool stop_at_eos) {
        if (max_tokens < 0) kiln::fail<kiln::ValueError>("[python] max_tokens must be >= 0, got ", max_tokens);
        kiln::text::GenerationOptions o;
        o.max_tokens = max_tokens;
        o.sampling = {temperature, top_k, top_p, min_p, repetition_penalty, repetition_window, seed};
        o.stop = std::move(stop);
        o.stop_at_eos = stop_at_eos;
        const LanguageModel& model = nb::cast<const LanguageModel&>(lm);
        return new Generation(lm, model, std::move(prompt), std::move(o));
      },
      "lm"_a, "prompt"_a, nb::kw_only(), "max_tokens"_a = 256, "temperature"_a = 0.0f, "top_k"_a = 0,
      "top_p"_a = 1.0f, "min_p"_a = 0.0f, "repetition_penalty"_a = 1.0f, "repetition_window"_a = 64, "seed"_a = 0,
      "stop"_a = std::vector<std::string>{}, "stop_at_eos"_a = true, nb::rv_policy::take_ownership,
      "Continues the token ids of prompt; a Generation that streams the text.");
}

}  // namespace kiln_py
