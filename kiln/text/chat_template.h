// Chat templates: the part of Jinja2 that the chat templates of Hugging Face models use
// (tokenizer_config.json "chat_template", GGUF "tokenizer.chat_template"), rendered the way
// transformers renders them: a sandboxed jinja2 Environment(trim_blocks=True,
// lstrip_blocks=True) with loop controls, the globals raise_exception(msg), strftime_now(fmt),
// namespace(...) and dict(...), a tojson filter that keeps non-ASCII text as is, and the
// {% generation %} tag rendered as plain content.
//
// Supported: text, {{ }}, {% %}, {# #} with whitespace control (-, +); literals, lists, dicts,
// tuples; attribute, subscript and slice access; arithmetic, comparison, logic, `in`, `~`,
// `is` tests, `a if c else b`; the common filters, tests and str/dict methods; if/elif/else,
// for (unpacking, loop.*, `if` filter, else, break, continue), set (names, tuples,
// namespace attributes, blocks), macro, call blocks, print, raw. Other tags, filters and tests
// are rejected when the template is parsed, naming the construct; `%` string formatting and
// str.format fail, by name, when reached.
//
// escape (e) returns a plain string, not jinja2's Markup: escaping twice escapes twice, and
// Markup's own arithmetic (Markup + str escapes the str) is not reproduced. Chat templates do not
// escape; the fixed tests cover single escapes.
//
// Values follow Python: undefined names render as "" and are false, while an attribute or
// item of an undefined value is an error (jinja2's default Undefined); str() of lists, dicts,
// floats and None prints as Python does; select, map and friends yield once, like jinja2's
// generators. Integers are 64-bit. Strings are UTF-8; lengths, indices and slices count code
// points. Case mapping covers ASCII, Latin-1, Latin Extended-A, Greek and basic Cyrillic.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace kiln::text {

struct ChatMessage {
  std::string role;
  std::string content;
};

struct ChatOptions {
  bool add_generation_prompt = true;
  std::string bos_token, eos_token;
};

class ChatTemplate {
 public:
  // Parses once. A syntax error, or a filter, test or tag this engine lacks, throws
  // ValueError "[chat_template] line N: ...".
  explicit ChatTemplate(std::string source);

  // Renders with the variables transformers' apply_chat_template passes: messages (role,
  // content), add_generation_prompt, bos_token, eos_token, and tools = documents = None.
  // Errors while rendering (raise_exception, undefined access, type errors) throw ValueError.
  std::string apply(const std::vector<ChatMessage>& messages, const ChatOptions& opts = {}) const;

  // Renders with the variables of a JSON object (messages, add_generation_prompt, bos_token,
  // tools, date_string, ...); objects keep their key order, as Python's json does.
  std::string render_json(const std::string& context_json) const;

  const std::string& source() const { return source_; }

  struct Program;  // the parsed template (chat_template.cpp)

 private:
  std::string source_;
  std::shared_ptr<const Program> program_;
};

}  // namespace kiln::text
