# ruff: noqa: E501  (the chat template below is data)
"""Tiny checkpoints built offline: a Qwen2-architecture model with random weights and a
byte-level BPE tokenizer trained here, wrapped with the ChatML special tokens and a chat
template that renders tools the Qwen2.5 way. Saved with save_pretrained, so tests load them
through the project's own loader exactly like a real checkpoint.
"""

from __future__ import annotations

from pathlib import Path

CHATML_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# A Qwen2.5-style template (our own wording of its structure): tools listed in the system
# turn, assistant tool calls as <tool_call> JSON, tool results as <tool_response> in a user turn.
TINY_CHAT_TEMPLATE = """
{%- if tools %}
{{- '<|im_start|>system\\n' }}
{%- if messages[0]['role'] == 'system' %}{{- messages[0]['content'] }}
{%- else %}{{- 'You are a helpful assistant.' }}{%- endif %}
{{- '\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n' }}
{{- 'You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' }}
{%- for tool in tools %}{{- '\\n' }}{{- tool | tojson }}{%- endfor %}
{{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and ' }}
{{- 'arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n' }}
{{- '{"name": <function-name>, "arguments": <args-json-object>}\\n</tool_call><|im_end|>\\n' }}
{%- elif messages[0]['role'] == 'system' %}
{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
{%- else %}
{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}
{%- endif %}
{%- for message in messages %}
{%- if message.role == 'system' and loop.first %}
{%- elif message.role == 'user' or message.role == 'system' %}
{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}
{%- elif message.role == 'assistant' %}
{{- '<|im_start|>assistant' }}
{%- if message.content %}{{- '\\n' + message.content }}{%- endif %}
{%- for tc in message.tool_calls | default([]) %}
{%- set fn = tc.function if tc.function is defined else tc %}
{{- '\\n<tool_call>\\n{"name": "' + fn.name + '", "arguments": ' }}
{%- if fn.arguments is string %}{{- fn.arguments }}{%- else %}{{- fn.arguments | tojson }}{%- endif %}
{{- '}\\n</tool_call>' }}
{%- endfor %}
{{- '<|im_end|>\\n' }}
{%- elif message.role == 'tool' %}
{%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}{{- '<|im_start|>user' }}{%- endif %}
{{- '\\n<tool_response>\\n' + message.content + '\\n</tool_response>' }}
{%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}{{- '<|im_end|>\\n' }}{%- endif %}
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}
""".strip()


def _corpus() -> list[str]:
    words = (
        "Thought Action Action Input Observation Final Answer Question Begin tool call "
        "the employee database calculator clock python birthday month October February "
        "Zhang San Li Si Wang Wu name gender position engineer manager answer result "
        "I now know the final answer. Use the following format. You have access to the "
        "following APIs. Format the arguments as a JSON object. system user assistant "
        "张三 李四 王五 生日 员工 数据库 计算器 你好 今天 几月 多少 个月 查无此人"
    ).split()
    lines = []
    for i in range(400):
        a, b, c = words[i % len(words)], words[(i * 7) % len(words)], words[(i * 13) % len(words)]
        lines.append(f'{a} {b}: {c} {{"name": "{b}", "n": {i}}} {i * 37 % 1000}.\n')
    lines.append("Thought: I now know the final answer\nFinal Answer: 42\nObservation: ok\n")
    return lines


def build_tokenizer(directory: Path | None = None):
    """A fast ChatML tokenizer trained offline (~0.5 s). Saved when directory is given."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=CHATML_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>", "<|endoftext|>"],
        model_max_length=4096,
    )
    fast.chat_template = TINY_CHAT_TEMPLATE
    if directory is not None:
        fast.save_pretrained(directory)
    return fast


def tiny_qwen2_config(vocab_size: int, **overrides):
    from transformers import Qwen2Config

    kwargs = dict(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
    )
    kwargs.update(overrides)
    return Qwen2Config(**kwargs)


def build_tiny_qwen2(directory: str | Path, seed: int = 0, **config_overrides) -> Path:
    """Save a random tiny Qwen2ForCausalLM + ChatML tokenizer to directory; return it."""
    import torch
    from transformers import GenerationConfig, Qwen2ForCausalLM

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(directory)
    im_end, eot = tok.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    config = tiny_qwen2_config(
        len(tok), eos_token_id=im_end, pad_token_id=eot, bos_token_id=None, **config_overrides
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=[im_end, eot], pad_token_id=eot)
    model.save_pretrained(directory)
    return directory
