// The chat-template engine (kiln/text/chat_template) against Python's jinja2 configured the way
// transformers' apply_chat_template configures it: tests/fixtures/chat_template_reference.py
// renders every case at test time, and kiln's output must be the same bytes, or an error
// wherever jinja2 raises one. The model templates below are the published chat_template
// strings of their tokenizer_config.json files (SmolLM2's is the one in its GGUF), copied
// verbatim. Tests skip visibly when python3 with jinja2 is missing.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "kiln/errors.h"
#include "kiln/io/gguf.h"
#include "kiln/text/chat_template.h"
#include "kiln/text/utf8.h"
#include "file_utils.h"
#include "model_utils.h"
#include "test_utils.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;  // keeps key order, as Python's json does
using text::ChatMessage;
using text::ChatOptions;
using text::ChatTemplate;

using test::read_file;
using test::write_file;
// Each suite's temporary files get their own prefix.
struct TempDir : test::TempDir {
  TempDir() : test::TempDir("kiln_chat") {}
};

// ---- model templates ----

// HuggingFaceTB/SmolLM2-135M-Instruct (ChatML), the GGUF's tokenizer.chat_template.
const char* const kSmolLM2 = R"TPL({% for message in messages %}{% if loop.first and messages[0]['role'] != )TPL"
                             R"TPL('system' %}{{ '<|im_start|>system
You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>
' }}{% endif %}{{'<|im_start|>' + message['role'] + '
' + message['content'] + '<|im_end|>' + '
'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant
' }}{% endif %})TPL";

// meta-llama/Meta-Llama-3-8B-Instruct.
const char* const kLlama3 = R"TPL({% set loop_messages = messages %}{% for message in loop_messages %}{% set )TPL"
                            R"TPL(content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>

'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + )TPL"
                            R"TPL(content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ )TPL"
                            R"TPL('<|start_header_id|>assistant<|end_header_id|>

' }}{% endif %})TPL";

// meta-llama/Llama-3.1-8B-Instruct (tools, date_string, builtin_tools).
const char* const kLlama31 = R"TPL({{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\n\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a )TPL"
                             R"TPL(function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and )TPL"
                             R"TPL(its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user )TPL"
                             R"TPL(message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and )TPL"
                             R"TPL(its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | )TPL"
                             R"TPL(trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- "<|python_tag|>" + tool_call.name + ".call(" }}
            {%- for arg_name, arg_val in tool_call.arguments | items %}
                {{- arg_name + '="' + arg_val + '"' }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- endif %}
                {%- endfor %}
            {{- ")" }}
        {%- else  %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- '{"name": "' + tool_call.name + '", ' }}
            {{- '"parameters": ' }}
            {{- tool_call.arguments | tojson }}
            {{- "}" }}
        {%- endif %}
        {%- if builtin_tools is defined %}
            {#- This means we're in ipython mode #}
            {{- "<|eom_id|>" }}
        {%- else %}
            {{- "<|eot_id|>" }}
        {%- endif %}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
)TPL";

// meta-llama/Llama-3.2-3B-Instruct (strftime_now).
const char* const kLlama32 = R"TPL({{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- if strftime_now is defined %}
        {%- set date_string = strftime_now("%d %b %Y") %}
    {%- else %}
        {%- set date_string = "26 Jul 2024" %}
    {%- endif %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a )TPL"
                             R"TPL(function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and )TPL"
                             R"TPL(its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user )TPL"
                             R"TPL(message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and )TPL"
                             R"TPL(its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | )TPL"
                             R"TPL(trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
        {{- '{"name": "' + tool_call.name + '", ' }}
        {{- '"parameters": ' }}
        {{- tool_call.arguments | tojson }}
        {{- "}" }}
        {{- "<|eot_id|>" }}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
)TPL";

// meta-llama/Llama-2-7b-chat-hf.
const char* const kLlama2 =
    R"TPL({% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% )TPL"
    R"TPL(set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set )TPL"
    R"TPL(system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') )TPL"
    R"TPL(!= (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate )TPL"
    R"TPL(user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %})TPL"
    R"TPL({% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}{% else %}{% )TPL"
    R"TPL(set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] )TPL"
    R"TPL(' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + )TPL"
    R"TPL(' ' + eos_token }}{% endif %}{% endfor %})TPL";

// mistralai/Mistral-7B-Instruct-v0.3 (namespace, tools).
const char* const kMistral03 = R"TPL({%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}
{%- set user_messages = loop_messages | selectattr("role", "equalto", "user") | list %}

{#- This block checks for alternating user/assistant messages, skipping tool calling messages #}
{%- set ns = namespace() %}
{%- set ns.index = 0 %}
{%- for message in loop_messages %}
    {%- if not (message.role == "tool" or message.role == "tool_results" or (message.tool_calls is )TPL"
                               R"TPL(defined and message.tool_calls is not none)) %}
        {%- if (message["role"] == "user") != (ns.index % 2 == 0) %}
            {{- raise_exception("After the optional system message, conversation roles must alternate )TPL"
                               R"TPL(user/assistant/user/assistant/...") }}
        {%- endif %}
        {%- set ns.index = ns.index + 1 %}
    {%- endif %}
{%- endfor %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if message["role"] == "user" %}
        {%- if tools is not none and (message == user_messages[-1]) %}
            {{- "[AVAILABLE_TOOLS] [" }}
            {%- for tool in tools %}
                {%- set tool = tool.function %}
                {{- '{"type": "function", "function": {' }}
                {%- for key, val in tool.items() if key != "return" %}
                    {%- if val is string %}
                        {{- '"' + key + '": "' + val + '"' }}
                    {%- else %}
                        {{- '"' + key + '": ' + val|tojson }}
                    {%- endif %}
                    {%- if not loop.last %}
                        {{- ", " }}
                    {%- endif %}
                {%- endfor %}
                {{- "}}" }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- else %}
                    {{- "]" }}
                {%- endif %}
            {%- endfor %}
            {{- "[/AVAILABLE_TOOLS]" }}
            {%- endif %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST] " + system_message + "\n\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST] " + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif message.tool_calls is defined and message.tool_calls is not none %}
        {{- "[TOOL_CALLS] [" }}
        {%- for tool_call in message.tool_calls %}
            {%- set out = tool_call.function|tojson %}
            {{- out[:-1] }}
            {%- if not tool_call.id is defined or tool_call.id|length != 9 %}
                {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
            {%- endif %}
            {{- ', "id": "' + tool_call.id + '"}' }}
            {%- if not loop.last %}
                {{- ", " }}
            {%- else %}
                {{- "]" + eos_token }}
            {%- endif %}
        {%- endfor %}
    {%- elif message["role"] == "assistant" %}
        {{- " " + message["content"]|trim + eos_token}}
    {%- elif message["role"] == "tool_results" or message["role"] == "tool" %}
        {%- if message.content is defined and message.content.content is defined %}
            {%- set content = message.content.content %}
        {%- else %}
            {%- set content = message.content %}
        {%- endif %}
        {{- '[TOOL_RESULTS] {"content": ' + content|string + ", " }}
        {%- if not message.tool_call_id is defined or message.tool_call_id|length != 9 %}
            {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
        {%- endif %}
        {{- '"call_id": "' + message.tool_call_id + '"}[/TOOL_RESULTS]' }}
    {%- else %}
        {{- raise_exception("Only user and assistant roles are supported, with the exception of an )TPL"
                               R"TPL(initial optional system message!") }}
    {%- endif %}
{%- endfor %}
)TPL";

// mistralai/Mixtral-8x7B-Instruct-v0.1 (Mistral Instruct v0.1 format).
const char* const kMixtral = R"TPL({%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('After the optional system message, conversation roles must alternate )TPL"
                             R"TPL(user/assistant/user/assistant/...') }}
    {%- endif %}
    {%- if message['role'] == 'user' %}
        {%- if loop.first and system_message is defined %}
            {{- ' [INST] ' + system_message + '\n\n' + message['content'] + ' [/INST]' }}
        {%- else %}
            {{- ' [INST] ' + message['content'] + ' [/INST]' }}
        {%- endif %}
    {%- elif message['role'] == 'assistant' %}
        {{- ' ' + message['content'] + eos_token}}
    {%- else %}
        {{- raise_exception('Only user and assistant roles are supported, with the exception of an )TPL"
                             R"TPL(initial optional system message!') }}
    {%- endif %}
{%- endfor %}
)TPL";

// Qwen/Qwen2-7B-Instruct.
const char* const kQwen2 = R"TPL({% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' )TPL"
                           R"TPL(%}{{ '<|im_start|>system
You are a helpful assistant.<|im_end|>
' }}{% endif %}{{'<|im_start|>' + message['role'] + '
' + message['content'] + '<|im_end|>' + '
'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant
' }}{% endif %})TPL";

// Qwen/Qwen2.5-3B-Instruct (tools).
const char* const kQwen25 =
    R"TPL({%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are )TPL"
    R"TPL(provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments )TPL"
    R"TPL(within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": )TPL"
    R"TPL(<args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful )TPL"
    R"TPL(assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role )TPL"
    R"TPL(== "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
)TPL";

// Qwen/Qwen3-1.7B (reasoning, namespace, reversed messages).
const char* const kQwen3 =
    R"TPL({%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0].role == 'system' %}
        {{- messages[0].content + '\n\n' }}
    {%- endif %}
    {{- "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are )TPL"
    R"TPL(provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments )TPL"
    R"TPL(within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": )TPL"
    R"TPL(<args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0].role == 'system' %}
        {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and message.content is string and )TPL"
    R"TPL(not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.content is string %}
        {%- set content = message.content %}
    {%- else %}
        {%- set content = '' %}
    {%- endif %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\n' + content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {%- set reasoning_content = '' %}
        {%- if message.reasoning_content is string %}
            {%- set reasoning_content = message.reasoning_content %}
        {%- else %}
            {%- if '</think>' in content %}
                {%- set reasoning_content = )TPL"
    R"TPL(content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}
                {%- set content = content.split('</think>')[-1].lstrip('\n') %}
            {%- endif %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index %}
            {%- if loop.last or (not loop.last and reasoning_content) %}
                {{- '<|im_start|>' + message.role + '\n<think>\n' + reasoning_content.strip('\n') + )TPL"
    R"TPL('\n</think>\n\n' + content.lstrip('\n') }}
            {%- else %}
                {{- '<|im_start|>' + message.role + '\n' + content }}
            {%- endif %}
        {%- else %}
            {{- '<|im_start|>' + message.role + '\n' + content }}
        {%- endif %}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- if (loop.first and content) or (not loop.first) %}
                    {{- '\n' }}
                {%- endif %}
                {%- if tool_call.function %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {{- '<tool_call>\n{"name": "' }}
                {{- tool_call.name }}
                {{- '", "arguments": ' }}
                {%- if tool_call.arguments is string %}
                    {{- tool_call.arguments }}
                {%- else %}
                    {{- tool_call.arguments | tojson }}
                {%- endif %}
                {{- '}\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- endif %}
{%- endif %})TPL";

// google/gemma-3-1b-it (content parts).
const char* const kGemma3 = R"TPL({{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '

' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '

' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '
' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>
' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model
'}}
{%- endif -%}
)TPL";

// ---- the reference ----

// One render: a template and its variables. `apply` cases go through ChatTemplate::apply with
// `messages` and `options`; their `context` is what apply passes, for jinja2.
struct Case {
  std::string name;
  std::string source;
  std::string context;  // a JSON object
  bool apply = false;
  std::vector<ChatMessage> messages;
  ChatOptions options;
};

// jinja2's result: the text, or the error (with its line and stage, "parse" or "render").
struct Expected {
  bool ok = false;
  std::string text;
  std::string stage;
  int line = -1;
};

// Why the reference cannot run, or empty.
const std::string& reference_unavailable() {
  static const std::string why = std::system("python3 -c 'import jinja2' >/dev/null 2>&1") == 0
                                     ? std::string()
                                     : std::string("python3 with jinja2 is not available (pip install jinja2)");
  return why;
}

#define NEED_REFERENCE() \
  if (!reference_unavailable().empty()) GTEST_SKIP() << reference_unavailable()

std::vector<Expected> reference(const std::vector<Case>& cases) {
  TempDir dir;
  json in = json::array();
  for (const auto& c : cases) in.push_back({{"template", c.source}, {"context", c.context}});
  write_file(dir.file("cases.json"), in.dump());
  fs::path script = fs::path(__FILE__).parent_path() / "fixtures" / "chat_template_reference.py";
  std::string cmd = "python3 '" + script.string() + "' '" + dir.file("cases.json") + "' '" + dir.file("out.json") + "'";
  if (std::system(cmd.c_str()) != 0) {
    ADD_FAILURE() << "reference script failed: " << cmd;
    return {};
  }
  json out = json::parse(read_file(dir.file("out.json")));
  std::vector<Expected> expected;
  for (const auto& r : out) {
    Expected e;
    e.ok = r.contains("ok");
    e.text = e.ok ? r["ok"].get<std::string>() : r["error"].get<std::string>();
    if (!e.ok) {
      e.stage = r["stage"].get<std::string>();
      if (r["line"].is_number()) e.line = r["line"].get<int>();
    }
    expected.push_back(std::move(e));
  }
  EXPECT_EQ(expected.size(), cases.size()) << "reference script wrote the wrong number of results";
  return expected;
}

json messages_json(const std::vector<ChatMessage>& messages) {
  json m = json::array();
  for (const auto& msg : messages) m.push_back({{"role", msg.role}, {"content", msg.content}});
  return m;
}

// A case for ChatTemplate::apply, with the variables transformers passes.
Case apply_case(std::string name, const char* source, const std::vector<ChatMessage>& messages,
                const ChatOptions& opts) {
  json ctx = {{"messages", messages_json(messages)},
              {"tools", nullptr},
              {"documents", nullptr},
              {"add_generation_prompt", opts.add_generation_prompt},
              {"bos_token", opts.bos_token},
              {"eos_token", opts.eos_token}};
  return Case{std::move(name), source, ctx.dump(), true, messages, opts};
}

Case json_case(std::string name, std::string source, const json& context) {
  return Case{std::move(name), std::move(source), context.dump()};
}

// Renders every case with kiln and compares with jinja2: the same bytes, or an error on both sides.
void check(const std::vector<Case>& cases) {
  std::vector<Expected> want = reference(cases);
  if (want.size() != cases.size()) return;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    std::string got, error;
    bool threw = false;
    try {
      ChatTemplate t(c.source);
      got = c.apply ? t.apply(c.messages, c.options) : t.render_json(c.context);
    } catch (const ValueError& e) {
      threw = true;
      error = e.what();
    }
    if (want[i].ok) {
      EXPECT_FALSE(threw) << c.name << ": kiln failed where jinja2 rendered: " << error << "\n  template: " << c.source;
      if (!threw)
        EXPECT_EQ(got, want[i].text) << c.name << "\n  template: " << c.source << "\n  context: " << c.context;
    } else {
      EXPECT_TRUE(threw) << c.name << ": jinja2 failed (" << want[i].text << ") but kiln rendered: " << got
                         << "\n  template: " << c.source;
    }
  }
}

// Every line of `lines` is a template of its own, rendered with `context`.
std::vector<Case> line_cases(const std::string& what, const std::string& lines, const json& context) {
  std::vector<Case> cases;
  size_t p = 0;
  while (p < lines.size()) {
    size_t q = lines.find('\n', p);
    if (q == std::string::npos) q = lines.size();
    if (q > p)
      cases.push_back(json_case(what + " line " + std::to_string(cases.size() + 1), lines.substr(p, q - p), context));
    p = q + 1;
  }
  return cases;
}

const json& data() {
  static const json d = json::parse(R"({
    "x": 3, "s": "Hello World", "u": "héllo wörld ÄÖ ΣΑΣ привет", "l": [3, 1, 2], "f": 1.5, "n": null, "t": true,
    "e": "", "sp": "  pad \n", "d": {"a": 1, "b": [2, 3], "items": 9}, "nested": {"a": {"b": {"c": 5}}},
    "msgs": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"},
             {"role": "assistant", "content": "yo", "tool_calls": [{"id": "1"}]}]})");
  return d;
}

// ---- the expression language ----

TEST(ChatTemplate, OperatorsAndLiterals) {
  NEED_REFERENCE();
  check(
      line_cases("operators",
                 R"TPL({{ 1 + 2 * 3 }}|{{ (1 + 2) * 3 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % 3 }}|{{ -7 % 3 }}|{{ 7 / 2 }}
{{ 2 ** 3 ** 2 }}|{{ -2 ** 2 }}|{{ 2 ** -1 }}|{{ 10 / 5 }}|{{ 7.5 // 2 }}|{{ -7.5 % 2 }}|{{ 0.1 // 1e-5 }}
{{ 1.5 + 1 }}|{{ 0.1 + 0.2 }}|{{ 1e100 }}|{{ 1.0 }}|{{ 3.0 * 2 }}|{{ 1e-7 }}|{{ 123456789.123 }}|{{ 2.5e15 }}
{{ 2.5e16 }}
{{ 1_000 + 2 }}|{{ -0.0 }}|{{ 1e308 * 10 }}|{{ 3 * -1.5 }}|{{ +x }}|{{ -x }}
{{ "a" ~ 1 ~ 2.5 ~ none ~ true ~ undefined_x ~ [1] ~ {"k": "v"} }}
{{ "ab" * 3 }}|{{ [1, 2] * 2 }}|{{ 2 * "x" }}|{{ [1] + [2, 3] }}|{{ "a" + "b" }}|{{ (1, 2) + (3,) }}
{{ 1 == 1.0 }}|{{ true == 1 }}|{{ "a" != "b" }}|{{ 1 < 2 <= 2 }}|{{ 3 > 2 > 2 }}|{{ "abc" < "abd" }}
{{ [1, 2] < [1, 3] }}
{{ none == none }}|{{ undefined_x == undefined_y }}|{{ undefined_x == none }}|{{ (1, 2) == [1, 2] }}
{{ {"a": 1} == {"a": 1.0} }}
{{ 1 in [1, 2] }}|{{ "b" in "abc" }}|{{ "a" in d }}|{{ "z" not in d }}|{{ 3 not in l }}|{{ not 1 in l }}
{{ 1 in undefined_x }}
{{ x and "yes" }}|{{ 0 or "no" }}|{{ none or [] }}|{{ x > 2 and x < 4 }}|{{ not x }}|{{ not not x }}
{{ undefined_x or "fallback" }}
{{ "y" if x > 2 else "n" }}|{{ "y" if x > 5 }}|{{ "a" if false else "b" if true else "c" }}
{{ [1, 2.5, "a", none, true] }}|{{ (1, 2) }}|{{ (1,) }}|{{ () }}|{{ {"k": [1, {"z": none}]} }}
{{ {1: "a", 2.5: "b", none: 1} }}
{{ "it's" }}|{{ ["it's", 'say "hi"', 'both \' and "', "tab\there", "nl\nx", "back\\slash", "\x01\u00a0\u200b"] }}
{{ "\u00e9\x41\101\t|\'" }}|{{ 'a' "b" 'c' }}|{{ "multi\nline" }}|{{ ["é", "日本", "😀"] }}
{{ true }}|{{ True }}|{{ false }}|{{ False }}|{{ none }}|{{ None }}|{{ 0.5 }}|{{ 100 }}|{{ [] }}|{{ {} }}
{{ x.0 }}|{{ l.1 }}|{{ msgs.1.role }}|{{ (msgs|last).content }}|{{ msgs[-1]['role'] | upper }}|{{ -x|abs }}
{{ nested.a.b.c }}|{{ nested["a"]["b"].c }}|{{ d["items"] }}|{{ d.zz }}|{{ d.zz is defined }}|{{ n.foo }}
{{ l.foo }}|{{ d.b.1 }}
{{ s[0] }}|{{ s[-1] }}|{{ s[1:3] }}|{{ s[::-1] }}|{{ s[:-2] }}|{{ u[1] }}|{{ u[1:4] }}|{{ u[::-2] }}
{{ s[100:] }}|{{ s[100] }}
{{ l[1:] }}|{{ l[-1] }}|{{ l[10] }}|{{ l[::2] }}|{{ l[-5:10] }}|{{ l[2:0:-1] }}|{{ msgs[1:]|length }}
{{ msgs[0]["content"] }}
{{ range(3)|list }}|{{ range(1, 7, 2)|list }}|{{ range(5, 0, -2)|list }}|{{ dict(a=1, b="2") }}
{{ undefined_x }}|{{ undefined_x|length }}|{{ undefined_x is defined }}|{% for i in undefined_x %}never{% endfor %}|
{{ "a" + 1 }}
{{ 1 / 0 }}
{{ none + 1 }}
{{ -"a" }}
{{ "a" < 1 }}
{{ undefined_x + 1 }}
{{ undefined_x.attr }}
{{ undefined_x[0] }}
{{ undefined_x() }}
{{ x() }}
{{ {} in d }}
)TPL",
                 data()));
}

TEST(ChatTemplate, FiltersTestsAndMethods) {
  NEED_REFERENCE();
  check(line_cases(
      "filters",
      R"TPL({{ s|upper }}|{{ s|lower }}|{{ s|length }}|{{ u|length }}|{{ u|upper }}|{{ u|lower }}|{{ u|title }}
{{ u|capitalize }}
{{ "hELLO wORLD"|capitalize }}|{{ "a-b c(d [e <f"|title }}|{{ "don't stop"|title }}|{{ s|count }}|{{ l|count }}
{{ d|length }}
{{ sp|trim }}|{{ "xxhixx"|trim("x") }}|{{ "\u00a0\u3000 wide \u2003"|trim }}|{{ l|first }}|{{ l|last }}
{{ s|first }}|{{ s|last }}|{{ []|first }}|
{{ l|join(", ") }}|{{ l|join }}|{{ "abc"|join("-") }}|{{ msgs|join(", ", attribute="role") }}|{{ d|join(",") }}
{{ undefined_x|default("dflt") }}|{{ e|default("dflt") }}|{{ e|default("dflt", true) }}|{{ n|d("x") }}
{{ undefined_x|d }}|{{ 0|d(5, boolean=true) }}
{{ d|tojson }}|{{ msgs|tojson }}|{{ u|tojson }}|{{ "q\"b\\c\n\t\u0001\u007f</x>"|tojson }}
{{ [1.0, 2.5, none, true, 1e20]|tojson }}
{{ d|tojson(indent=2) }}|{{ msgs|tojson(indent=4) }}|{{ {}|tojson(indent=2) }}|{{ []|tojson(indent=2) }}
{{ [[]]|tojson(indent=1) }}
{{ d|tojson(sort_keys=true) }}|{{ d|tojson(separators=(",", ":")) }}|{{ u|tojson(ensure_ascii=true) }}
{{ "😀"|tojson(true) }}|{{ {1: 2, none: true}|tojson }}
{{ undefined_x|tojson }}
{{ x|string }}|{{ f|string }}|{{ n|string }}|{{ l|string }}|{{ d|string }}|{{ undefined_x|string }}|
{{ "3"|int + 1 }}|{{ "3.7"|int }}|{{ 3.7|int }}|{{ -3.7|int }}|{{ "abc"|int }}|{{ "abc"|int(7) }}
{{ " 42 "|int }}|{{ "0x1A"|int(0, 16) }}|{{ true|int }}
{{ "2.5"|float }}|{{ x|float }}|{{ "x"|float }}|{{ "1e3"|float }}|{{ none|float(-1.0) }}|{{ -3|abs }}|{{ -2.5|abs }}
{{ d|items|list }}|{{ d.items()|list }}|{{ d.keys()|list }}|{{ d.values()|list }}|{{ d|list }}|{{ s|list }}
{{ undefined_x|items|list }}
{{ d.get("a") }}|{{ d.get("zz") }}|{{ d.get("zz", 5) }}|{{ d.get("b")[0] }}|{{ d.copy() == d }}
{{ msgs|selectattr("role", "equalto", "user")|list }}
{{ msgs|rejectattr("role", "equalto", "user")|map(attribute="role")|list }}
{{ msgs|selectattr("tool_calls")|list|length }}|{{ msgs|selectattr("tool_calls", "defined")|list|length }}
{{ msgs|selectattr("tool_calls", "undefined")|map(attribute="content")|join("+") }}
{{ msgs|map(attribute="role")|join(",") }}|{{ msgs|map(attribute="missing", default="?")|list }}
{{ msgs|map(attribute="tool_calls.0.id")|list }}
{{ l|map("string")|join("-") }}|{{ [" a ", "b "]|map("trim")|list }}|{{ l|select("odd")|list }}
{{ l|reject("odd")|list }}|{{ l|select("gt", 1)|list }}
{{ [0, 1, "", "a", none]|select|list }}|{{ [0, 1, none]|reject|list }}|{{ none|select|list }}
{{ msgs|selectattr("role", "in", ["user", "system"])|list|length }}
{{ l|sort }}|{{ l|sort(reverse=true) }}|{{ ["b", "A", "c"]|sort }}
{{ ["b", "A", "c"]|sort(case_sensitive=true) }}|{{ msgs|sort(attribute="role")|map(attribute="role")|list }}
{{ l|reverse|list }}|{{ s|reverse }}|{{ l|max }}|{{ l|min }}|{{ ["b", "A"]|max }}|{{ l|sum }}
{{ [1.5, 2]|sum(start=1) }}|{{ [1, 1, 2, "a", "A"]|unique|list }}
{{ s|replace("o", "0") }}|{{ s|replace("o", "0", 1) }}|{{ s|replace("", "-") }}|{{ 2.567|round(2) }}
{{ 2.5|round }}|{{ 3.5|round }}|{{ 2.1|round(method="ceil") }}|{{ 2.9|round(method="floor") }}|{{ 1234|round(-2) }}
{{ "Hi"|center(8) }}|{{ "Hi"|center(9) }}|{{ "<a href='x'>&</a>"|e }}|{{ "<b>"|escape }}|{{ "<b>"|safe }}
{{ "one two\nthree"|wordcount }}
{{ "line1\nline2\n\nline4"|indent }}|{{ "line1\nline2\n\nline4"|indent(2, true) }}
{{ "a\nb"|indent("> ", first=true, blank=true) }}
{{ s.upper() }}|{{ s.lower() }}|{{ s.strip("Hd") }}|{{ sp.strip() }}|{{ sp.lstrip() }}|{{ sp.rstrip() }}
{{ "--x--".lstrip("-") }}|{{ "--x--".rstrip("-") }}
{{ s.split() }}|{{ s.split("o") }}|{{ "a,b,c".split(",", 1) }}|{{ "  a  b  ".split() }}
{{ " a b c ".split(none, 1) }}|{{ "a\nb\r\nc".splitlines() }}
{{ s.startswith("Hell") }}|{{ s.endswith(("x", "ld")) }}|{{ s.startswith("ello") }}|{{ s.replace("l", "L") }}
{{ s.replace("l", "L", 2) }}
{{ "hello world_foo don't 1st".title() }}|{{ s.find("World") }}|{{ u.find("w") }}|{{ s.find("zz") }}
{{ ", ".join(["a", "b"]) }}|{{ s.count("o") }}|{{ "heLLo".capitalize() }}
{{ s.nosuchmethod }}|{{ "abc".upper is defined }}
{{ x is defined }}|{{ y is defined }}|{{ y is undefined }}|{{ n is none }}|{{ x is not none }}|{{ s is string }}
{{ x is number }}|{{ f is number }}|{{ t is number }}
{{ d is mapping }}|{{ l is mapping }}|{{ l is iterable }}|{{ s is iterable }}|{{ x is iterable }}
{{ d is sequence }}|{{ y is sequence }}|{{ msgs|select is sequence }}
{{ x is integer }}|{{ f is float }}|{{ t is boolean }}|{{ t is integer }}|{{ t is true }}|{{ 1 is true }}
{{ false is false }}|{{ 0 is false }}
{{ x is odd }}|{{ x is even }}|{{ 4.0 is even }}|{{ 9 is divisibleby 3 }}|{{ 9 is divisibleby(4) }}
{{ x is eq 3 }}|{{ x is equalto(3) }}|{{ x is ne 3 }}
{{ x is lt 4 }}|{{ x is gt 4 }}|{{ x is ge 3 }}|{{ x is le 2 }}|{{ x is == 3 }}|{{ x is != 3 }}
{{ "a" is in "abc" }}|{{ 5 is in l }}
{{ "abc" is lower }}|{{ "ABC" is upper }}|{{ "aBc" is lower }}|{{ "123" is lower }}|{{ n is sameas none }}
{{ t is sameas true }}|{{ 1 is sameas true }}
{{ "upper" is filter }}|{{ "odd" is test }}|{{ "nope" is filter }}|{{ range is callable }}
{{ s.upper is callable }}|{{ x is callable }}|{{ "x" is escaped }}
{{ x|nosuchfilter }}
{{ x is nosuchtest }}
{{ l|select("nosuchtest")|list }}
{{ msgs|map(attribute="role")|last }}
{{ msgs|selectattr("role")|length }}
)TPL",
      data()));
}

// ---- statements ----

TEST(ChatTemplate, Statements) {
  NEED_REFERENCE();
  std::vector<std::string> sources = {
      "{% if x == 1 %}one{% elif x == 3 %}three{% else %}other{% endif %}",
      "{% if x == 9 %}a{% elif x == 8 %}b{% endif %}|{% if [] %}a{% else %}empty{% endif %}",
      "{% if x, 0 %}tuple is true{% endif %}",
      "{% set y = 5 %}{{ y }}{% set y = y * 2 %}{{ y }}",
      "{% set a, b = 1, 2 %}{{ a }}-{{ b }}{% set (c, e) = ['p', 'q'] %}{{ c }}{{ e }}",
      "{% set a, b = [1] %}",
      "{% set ns = namespace(c=0, found=false) %}{% for i in l %}{% set ns.c = ns.c + i %}"
      "{% if i == 1 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.c }} {{ ns.found }} {{ ns.missing }}",
      "{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}{{ ns['a'] }}{% set ns.a = 'x' %}{{ ns.a }}",
      "{% set d2 = {} %}{% set d2.x = 1 %}",
      "{% set c = 0 %}{% for i in l %}{% set c = c + i %}{{ c }},{% endfor %}{{ c }}",
      "{% for i in l %}{{ i }}{% if i == 1 %}{% set z = 'inner' %}{% endif %}{{ z }};{% endfor %}{{ z }}",
      "{% if true %}{% set z = 3 %}{% endif %}{{ z }}",
      "{% for i in l %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.first }}/"
      "{{ loop.last }}/{{ loop.length }}/{{ loop.previtem }}/{{ loop.nextitem }}/{{ loop.depth }};{% endfor %}",
      "{% for i in l if i > 1 %}{{ i }}:{{ loop.index }}/{{ loop.length }} {% endfor %}",
      "{% for i in [] %}x{% else %}empty{% endfor %}|{% for i in l if i > 5 %}x{% else %}none passed{% endfor %}",
      "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 6 %}{% break %}{% endif %}{{ i }}"
      "{% endfor %}",
      "{% for i in range(3) %}{% for j in range(3) %}{% if j > i %}{% break %}{% endif %}{{ i }}{{ j }} {% endfor %}"
      "{{ loop.index }}|{% endfor %}",
      "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{% for k, v in d|items %}{{ k }}={{ v }};{% endfor %}",
      "{% for k in d %}{{ k }}{% endfor %}|{% for c in u %}[{{ c }}]{% endfor %}|{% for a, b in [[1, 2], (3, 4)] %}"
      "{{ a + b }}{% endfor %}",
      "{% for (a, b) in [[1, 2]] %}{{ a }}{{ b }}{% endfor %}",
      "{% for a, b in [[1, 2, 3]] %}{% endfor %}",
      "{% for m in msgs %}{% for c in m.content %}{{ loop.index }}{% endfor %}.{{ loop.index }} {% endfor %}",
      "{% for i in l %}{{ loop.cycle('odd', 'even') }}{% endfor %}",
      "{% for i in x %}{% endfor %}",
      "{% for i in n %}{% endfor %}",
      "{% set g = l|select('odd') %}{{ g|list }}{{ g|list }}{% for i in g %}never{% else %}used up{% endfor %}",
      "{% macro greet(name, punct='!') %}Hello {{ name }}{{ punct }}{% endmacro %}{{ greet('Bob') }} "
      "{{ greet('Al', punct='?') }} {{ greet(name='Z') }} {{ greet() }}",
      "{% macro m(a) %}{% set q = a * 2 %}{{ q }}{{ x }}{% endmacro %}{{ m(3) }}{{ q }}",
      "{% macro rec(n) %}{% if n > 0 %}{{ n }}{{ rec(n - 1) }}{% endif %}{% endmacro %}{{ rec(4) }}",
      "{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1, 2) }}",
      "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}"
      "{% call wrap('b') %}bold {{ x }}{% endcall %}",
      "{% macro each(items) %}{% for i in items %}{{ caller(i) }}{% endfor %}{% endmacro %}"
      "{% call(item) each(l) %}[{{ item * 10 }}]{% endcall %}",
      "{% set text %}inner {{ x }}{% endset %}[{{ text }}]",
      "{% generation %}assistant text {{ x }}{% endgeneration %}",
      "{% print x + 1 %}{% print 'a', 'b' %}",
      "{% raw %}{{ not parsed }}{% endraw %}",
      "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}",
      "{{ strftime_now('%Y') }}",
      "{{ messages }}{{ tools }}{{ loop }}|",
      "{{ 'a string\nacross lines' }}{{ [1,\n 2] }}",
  };
  std::vector<Case> cases;
  for (size_t i = 0; i < sources.size(); ++i)
    cases.push_back(json_case("statement " + std::to_string(i), sources[i], data()));
  check(cases);
}

TEST(ChatTemplate, WhitespaceControl) {
  NEED_REFERENCE();
  std::vector<std::string> sources = {
      "{% if x %}\nyes\n{% endif %}\n",
      "  {% if x %}\n  yes\n  {% endif %}\nend",
      "a\n  {% if x %}  \nb{% endif %}",
      "a\n  {%+ if x %}\nb{% endif %}",
      "a\n  {% if x +%}\nb{% endif %}",
      "a  {%- if x -%}  b  {%- endif -%}  c",
      "a\n\n  {{- x -}}  \n\nb",
      "a {{ x }} {% if x %} b {% endif %}\n",
      "line\n    {# comment #}\nnext",
      "line\n    {#- comment -#}\nnext",
      "x {# c #} y {#+ d +#}\nz",
      "{% for i in l %}\n  - {{ i }}\n{% endfor %}\n",
      "{% for i in l -%}\n  - {{ i }}\n{%- endfor %}",
      "{%- for i in l %}\n    {{- i }}\n{%- endfor %}",
      "{{ x }}\n{{ x }}\n",
      "{{ x }}\n\n",
      "\r\nA\r\nB\rC\n",
      "a\n  {% raw %}\n  {{ x }}\n  {% endraw %}\nb",
      "{% raw -%}   {{ x }}   {%- endraw %}",
      "   {{ x }}\n   {% if x %}y{% endif %}",
      "{% if x %}a{% endif %}   \n   {% if x %}b{% endif %}",
      "{% if x %}a{% endif %}{# c #}\n   {% if x %}b{% endif %}",
      "{{- '  lead' -}}  \n  {{ 'mid' }}  {{- 'x' }}",
      "text\n{% for i in [1,2] %}\n  {% if i %}\n    {{ i }}\n  {% endif %}\n{% endfor %}\ndone\n",
      "tab\t{%- if x %}\t\n\tkept{% endif %}\u00a0{{- x }}\u3000\n{%- if x -%}\u2003z{% endif %}",
  };
  std::vector<Case> cases;
  for (size_t i = 0; i < sources.size(); ++i)
    cases.push_back(json_case("whitespace " + std::to_string(i), sources[i], data()));
  check(cases);
}

// ---- random templates ----

std::string pick(const std::vector<std::string>& options) {
  return options[std::uniform_int_distribution<size_t>(0, options.size() - 1)(test::rng())];
}
double uniform() { return std::uniform_real_distribution<double>(0, 1)(test::rng()); }

// Text, tags, comments and raw blocks nested to `depth`, with random whitespace and random
// whitespace-control signs.
std::string random_block(int depth) {
  static const std::vector<std::string> texts = {"",  " ",   "  ",     "\t",      "\n",    "\n\n",  " \n ",
                                                 "a", "b c", "\u00a0", "\u3000x", " \r\n", "x\n  ", "\n  \t"};
  static const std::vector<std::string> signs = {"", "", "-", "+"};
  std::string out;
  int n = std::uniform_int_distribution<int>(1, 5)(test::rng());
  for (int k = 0; k < n; ++k) {
    out += pick(texts);
    double r = uniform();
    if (r < 0.25) {
      out += "{{" + pick({"", "-"}) + " x " + pick({"", "-"}) + "}}";
    } else if (r < 0.4) {
      out += "{#" + pick(signs) + " c " + pick(signs) + "#}";
    } else if (r < 0.7 && depth < 3) {
      std::string head = pick({"if x", "if not x", "for i in l", "set y = 1", "raw"});
      if (head == "set y = 1") {
        out += "{%" + pick(signs) + " set y = 1 " + pick(signs) + "%}";
      } else if (head == "raw") {
        out += "{%" + pick(signs) + " raw " + pick({"", "-"}) + "%}" + pick(texts) + "{{ q }}" + pick(texts) + "{%" +
               pick(signs) + " endraw " + pick(signs) + "%}";
      } else {
        bool is_if = head[0] == 'i';
        out += "{%" + pick(signs) + " " + head + " " + pick(signs) + "%}" + random_block(depth + 1);
        if (is_if && uniform() < 0.4)
          out += "{%" + pick(signs) + " else " + pick(signs) + "%}" + random_block(depth + 1);
        out += "{%" + pick(signs) + (is_if ? " endif " : " endfor ") + pick(signs) + "%}";
      }
    }
  }
  return out + pick(texts);
}

TEST(ChatTemplate, RandomWhitespaceControl) {
  NEED_REFERENCE();
  std::vector<Case> cases;
  for (int i = 0; i < 400; ++i)
    cases.push_back(json_case("random layout " + std::to_string(i), random_block(0), data()));
  check(cases);
}

// Nested expressions over literals, variables, operators, filters, tests and conditionals;
// many of them fail, which kiln must then do too.
std::string random_expression(int depth) {
  static const std::vector<std::string> atoms = {"0",    "1",          "-3",       "7",
                                                 "2.5",  "0.1",        "1e15",     "1e-5",
                                                 "'ab'", "'Héllo W'",  "''",       "' x '",
                                                 "none", "true",       "false",    "[1, 2, 3]",
                                                 "[]",   "['a', 'b']", "(1, 'x')", "{'a': 1, 'b': 'c'}",
                                                 "{}",   "x",          "s",        "l",
                                                 "d",    "undef",      "msgs[1]",  "msgs[1].role",
                                                 "d.a",  "l[0]",       "s[1:]",    "l[-1]"};
  static const std::vector<std::string> ops = {
      "+", "-", "*", "/", "//", "~", "==", "!=", "<", ">=", "in", "not in", "and", "or"};
  static const std::vector<std::string> filters = {"length",
                                                   "string",
                                                   "upper",
                                                   "lower",
                                                   "first",
                                                   "last",
                                                   "join(',')",
                                                   "default('D')",
                                                   "tojson",
                                                   "int",
                                                   "float",
                                                   "list",
                                                   "reverse|list",
                                                   "trim",
                                                   "title",
                                                   "capitalize",
                                                   "abs",
                                                   "sort",
                                                   "unique|list",
                                                   "items|list",
                                                   "count",
                                                   "d(1, true)",
                                                   "replace('a', 'Z')",
                                                   "round(1)",
                                                   "sum",
                                                   "max",
                                                   "min",
                                                   "map('string')|list",
                                                   "select|list",
                                                   "reject('none')|list",
                                                   "tojson(indent=1)",
                                                   "center(9)"};  // not e: see chat_template.h on Markup
  static const std::vector<std::string> tests = {
      "defined", "undefined",      "none", "string",       "number",     "mapping", "iterable", "sequence",
      "true",    "false",          "odd",  "even",         "integer",    "float",   "boolean",  "lower",
      "upper",   "divisibleby(2)", "eq 1", "in [1, 'ab']", "sameas none"};
  double r = uniform();
  if (depth <= 0 || r < 0.3) return pick(atoms);
  if (r < 0.55) return "(" + random_expression(depth - 1) + " " + pick(ops) + " " + random_expression(depth - 1) + ")";
  if (r < 0.75) return "(" + random_expression(depth - 1) + ")|" + pick(filters);
  if (r < 0.85) return "(" + random_expression(depth - 1) + " is " + pick({"", "not "}) + pick(tests) + ")";
  if (r < 0.92)
    return "(" + random_expression(depth - 1) + " if " + random_expression(depth - 1) + " else " +
           random_expression(depth - 1) + ")";
  return "(not " + random_expression(depth - 1) + ")";
}

TEST(ChatTemplate, RandomExpressions) {
  NEED_REFERENCE();
  std::vector<Case> cases;
  for (int i = 0; i < 1500; ++i)
    cases.push_back(json_case("random expression " + std::to_string(i), "{{ " + random_expression(3) + " }}", data()));
  check(cases);
}

// Words from the scripts whose casing kiln maps (ASCII, Latin-1, Latin Extended-A, Greek,
// Cyrillic) through every casing filter, method and test.
TEST(ChatTemplate, RandomCaseMapping) {
  NEED_REFERENCE();
  std::vector<uint32_t> pool = {0x2019, 0x301, 0xAD, ' ', ' ', '-', '\''};
  for (uint32_t c = 0x20; c < 0x7F; ++c) pool.push_back(c);
  for (uint32_t c = 0xA0; c < 0x180; ++c) pool.push_back(c);
  for (uint32_t c = 0x386; c < 0x3CF; ++c) pool.push_back(c);
  for (uint32_t c = 0x400; c < 0x460; ++c) pool.push_back(c);
  std::vector<Case> cases;
  for (int i = 0; i < 300; ++i) {
    std::string word;
    int n = std::uniform_int_distribution<int>(1, 12)(test::rng());
    for (int k = 0; k < n; ++k)
      text::append_utf8(word, pool[std::uniform_int_distribution<size_t>(0, pool.size() - 1)(test::rng())]);
    cases.push_back(json_case("casing " + std::to_string(i),
                              "{{ w|upper }}|{{ w|lower }}|{{ w|title }}|{{ w|capitalize }}|{{ w.title() }}|"
                              "{{ w.upper() }}|{{ w.lower() }}|{{ w.capitalize() }}|{{ w is lower }}|{{ w is upper }}",
                              json{{"w", word}}));
  }
  check(cases);
}

// ---- model templates ----

struct Model {
  const char* name;
  const char* source;
  ChatOptions options;
};

const std::vector<Model>& models() {
  static const std::vector<Model> m = {
      {"SmolLM2", kSmolLM2, {true, "<|im_start|>", "<|im_end|>"}},
      {"Llama 3", kLlama3, {true, "<|begin_of_text|>", "<|eot_id|>"}},
      {"Llama 3.1", kLlama31, {true, "<|begin_of_text|>", "<|eot_id|>"}},
      {"Llama 2", kLlama2, {true, "<s>", "</s>"}},
      {"Mistral v0.3", kMistral03, {true, "<s>", "</s>"}},
      {"Mixtral", kMixtral, {true, "<s>", "</s>"}},
      {"Qwen2", kQwen2, {true, "", "<|im_end|>"}},
      {"Qwen2.5", kQwen25, {true, "", "<|im_end|>"}},
      {"Qwen3", kQwen3, {true, "", "<|im_end|>"}},
      {"Gemma 3", kGemma3, {true, "<bos>", "<eos>"}},
  };
  return m;
}

const std::vector<std::vector<ChatMessage>>& conversations() {
  static const std::vector<std::vector<ChatMessage>> c = {
      {{"system", "You are a helpful assistant."},
       {"user", "Hello!"},
       {"assistant", "Hi there, how can I help?"},
       {"user", "Tell me a joke."}},
      {{"user", "Just one message"}},
      {{"user", "  spaced out \n"},
       {"assistant", "Line one\nLine two\n\n"},
       {"user", "Unicode: héllo wörld — 日本語 😀 \"quotes\" 'single' \\ backslash {{ not a tag }} {% raw %}"}},
      {{"system", "\n  System with whitespace  \n"}, {"user", "Q"}, {"assistant", "A"}},
      {{"user", "first"}, {"user", "second in a row"}},  // several templates refuse this
      {{"assistant", "starts with the assistant"}},
      {},
  };
  return c;
}

TEST(ChatTemplate, ModelTemplatesMatchTransformers) {
  NEED_REFERENCE();
  std::vector<Case> cases;
  for (const auto& m : models())
    for (size_t k = 0; k < conversations().size(); ++k)
      for (bool gen : {true, false}) {
        ChatOptions opts = m.options;
        opts.add_generation_prompt = gen;
        cases.push_back(
            apply_case(std::string(m.name) + " conversation " + std::to_string(k) + (gen ? " +generation prompt" : ""),
                       m.source, conversations()[k], opts));
      }
  check(cases);
}

// Tool definitions, tool calls and tool results, the other variables templates read
// (date_string, builtin_tools, tools_in_user_message, enable_thinking), and list content.
TEST(ChatTemplate, ModelTemplatesWithTools) {
  NEED_REFERENCE();
  json tools = json::parse(R"([{"type": "function", "function": {"name": "get_weather",
      "description": "Get the weather in a city.", "parameters": {"type": "object", "properties": {
      "city": {"type": "string", "description": "City name, e.g. Paris"},
      "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}}])");
  json calls = json::parse(R"([
      {"role": "system", "content": "Be brief."},
      {"role": "user", "content": "Weather in Paris?"},
      {"role": "assistant", "content": "", "tool_calls": [{"id": "call12345", "type": "function",
        "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}]},
      {"role": "tool", "tool_call_id": "call12345", "name": "get_weather",
       "content": "{\"temp\": 21.5, \"sky\": \"clear\"}"},
      {"role": "assistant", "content": "It is 21.5°C and clear."},
      {"role": "user", "content": "Thanks"}])");
  json builtin = json::parse(R"([
      {"role": "user", "content": "Search for kiln"},
      {"role": "assistant", "content": "", "tool_calls": [{"id": "abcdefghi", "type": "function",
        "function": {"name": "brave_search", "arguments": {"query": "kiln ovens"}}}]},
      {"role": "ipython", "content": {"results": ["a", "b"]}}])");
  json thinking = json::parse(R"([
      {"role": "user", "content": "2+2?"},
      {"role": "assistant", "content": "4", "reasoning_content": "Adding two and two."},
      {"role": "user", "content": "<tool_response>x</tool_response>"},
      {"role": "user", "content": "And 3+3?"}])");
  json parts = json::parse(R"([
      {"role": "system", "content": [{"type": "text", "text": "Sys part"}]},
      {"role": "user", "content": [{"type": "text", "text": "Look at "}, {"type": "image"},
                                   {"type": "text", "text": "this"}]},
      {"role": "assistant", "content": [{"type": "text", "text": "An image."}]}])");
  std::vector<Case> cases;
  for (const auto& m : models()) {
    auto add = [&](const std::string& what, json ctx) {
      ctx["bos_token"] = m.options.bos_token;
      ctx["eos_token"] = m.options.eos_token;
      ctx["add_generation_prompt"] = true;
      cases.push_back(json_case(std::string(m.name) + " " + what, m.source, ctx));
    };
    add("tools", {{"messages", calls}, {"tools", tools}, {"date_string", "05 Mar 2025"}});
    add("tools in system", {{"messages", calls}, {"tools", tools}, {"tools_in_user_message", false}});
    add("builtin tools",
        {{"messages", builtin}, {"tools", tools}, {"builtin_tools", {"brave_search", "code_interpreter"}}});
    add("thinking", {{"messages", thinking}, {"enable_thinking", false}});
    add("content parts", {{"messages", parts}});
  }
  json plain = messages_json(conversations()[0]);
  cases.push_back(json_case("Llama 3.2 date", kLlama32,
                            {{"messages", plain},
                             {"date_string", "01 Feb 2025"},
                             {"bos_token", "<|begin_of_text|>"},
                             {"add_generation_prompt", true}}));
  cases.push_back(json_case("Llama 3.2 tools", kLlama32,
                            {{"messages", calls},
                             {"tools", tools},
                             {"date_string", "01 Feb 2025"},
                             {"bos_token", "<|begin_of_text|>"},
                             {"add_generation_prompt", false}}));
  check(cases);
}

// The template as a GGUF carries it: read from the file, it must be the one above and render
// the same.
TEST(ChatTemplate, SmolLM2FromGGUF) {
  std::string path = test::smollm2_path();
  if (path.empty()) GTEST_SKIP() << "SmolLM2 GGUF not found (set KILN_SMOLLM2_GGUF, or run scripts/test.sh)";
  std::string source = io::GGUFFile::open(path).get_string("tokenizer.chat_template");
  EXPECT_EQ(source, kSmolLM2);
  NEED_REFERENCE();
  check({apply_case("SmolLM2 from GGUF", source.c_str(), conversations()[0], models()[0].options)});
}

// ---- errors ----

// A syntax error names jinja2's line; the constructor throws it.
TEST(ChatTemplate, SyntaxErrorsNameTheLine) {
  NEED_REFERENCE();
  std::vector<std::string> sources = {
      "Hello\n{{ 1 + }}\n",
      "{% if x %}\n\n{% for %}{% endfor %}{% endif %}",
      "a\nb\n{% endfor %}",
      "{% for m in messages %}\n{{ m }}\n",
      "x\n{{ name | nosuchfilter }}",
      "{# fine #}\n{% set x = [1, 2 %}",
      "line\n\n\n{{ 'unterminated }}",
      "{% if a %}{% elif %}{% endif %}",
      "{{\n  1 +\n}}",
      "{% if true %}\n{% else %}\n{% else %}\n{% endif %}",
      "a\n{% macro m( %}{% endmacro %}",
      "\n{{ x is nosuchtest }}",
      "q\n{{ a.(b) }}",
      "{#\n\nunclosed comment",
      "\n\n{% set %}",
  };
  std::vector<Case> cases;
  for (const auto& s : sources) cases.push_back(json_case("syntax", s, json::object()));
  std::vector<Expected> want = reference(cases);
  ASSERT_EQ(want.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    ASSERT_FALSE(want[i].ok) << "jinja2 accepted: " << sources[i];
    ASSERT_EQ(want[i].stage, "parse") << sources[i];
    KILN_EXPECT_THROW_MSG(ChatTemplate{sources[i]}, ValueError,
                          "[chat_template] line " + std::to_string(want[i].line) + ":");
  }
}

TEST(ChatTemplate, RaiseExceptionCarriesTheMessage) {
  NEED_REFERENCE();
  const std::string message = "Conversation roles must alternate user/assistant/user/assistant/...";
  std::vector<ChatMessage> bad = {{"user", "a"}, {"user", "b"}};
  ChatOptions opts{true, "<s>", "</s>"};
  Case c = apply_case("Llama 2 non-alternating", kLlama2, bad, opts);
  std::vector<Expected> want = reference({c});
  ASSERT_EQ(want.size(), 1u);
  ASSERT_FALSE(want[0].ok);
  EXPECT_NE(want[0].text.find(message), std::string::npos) << want[0].text;
  ChatTemplate t(kLlama2);
  try {
    t.apply(bad, opts);
    ADD_FAILURE() << "expected ValueError from raise_exception";
  } catch (const ValueError& e) {
    EXPECT_EQ(std::string(e.what()), "[chat_template] " + message);
  }
}

// Constructs kiln leaves out are refused when parsing, by name; missing values and bad
// operands fail when rendering.
TEST(ChatTemplate, ClearErrors) {
  KILN_EXPECT_THROW_MSG(ChatTemplate("{{ x|nosuchfilter }}"), ValueError, "unknown filter 'nosuchfilter'");
  KILN_EXPECT_THROW_MSG(ChatTemplate("{{ x is nosuchtest }}"), ValueError, "unknown test 'nosuchtest'");
  KILN_EXPECT_THROW_MSG(ChatTemplate("{% include 'other.jinja' %}"), ValueError, "the 'include' tag is not supported");
  KILN_EXPECT_THROW_MSG(ChatTemplate("{% extends 'base' %}"), ValueError, "the 'extends' tag is not supported");
  KILN_EXPECT_THROW_MSG(ChatTemplate("\n{{ l|batch(2) }}"), ValueError, "line 2: the filter 'batch' is not supported");
  KILN_EXPECT_THROW_MSG(ChatTemplate("{% frobnicate %}"), ValueError, "unknown tag 'frobnicate'");
  KILN_EXPECT_THROW_MSG(ChatTemplate("{% for i in l recursive %}{% endfor %}"), ValueError, "recursive for loops");
  KILN_EXPECT_THROW_MSG(ChatTemplate("{{ f(*args) }}"), ValueError, "*args and **kwargs");
  KILN_EXPECT_THROW_MSG(ChatTemplate("{{ '%s' % x }}").render_json("{\"x\": 1}"), ValueError, "'%') is not supported");
  KILN_EXPECT_THROW_MSG(ChatTemplate("{{ '{}'.format(x) }}").render_json("{\"x\": 1}"), ValueError, "str.format");
  KILN_EXPECT_THROW_MSG(ChatTemplate("a\n{{ foo.bar }}").render_json("{}"), ValueError, "line 2: 'foo' is undefined");
  KILN_EXPECT_THROW_MSG(ChatTemplate("{{ m.content.x }}").render_json("{\"m\": {}}"), ValueError,
                        "'dict object' has no attribute 'content'");
  KILN_EXPECT_THROW_MSG(ChatTemplate("{{ 1 }}").render_json("[1]"), ValueError, "must be a JSON object");
  KILN_EXPECT_THROW_MSG(ChatTemplate("{{ 1 }}").render_json("{oops"), ValueError, "invalid JSON");
}

}  // namespace
}  // namespace kiln
