"""The Qwen v1 tokenizer (qwen.tiktoken) as a transformers fast tokenizer with v1's exact ids."""

from __future__ import annotations

import hashlib
import os
import unicodedata
from pathlib import Path

from llm.cache import cache_dir
from llm.chatml import CHATML_TEMPLATE
from llm.errors import Qwen1ConversionError

ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SPECIAL_START_ID = 151643
# v1 reserves 205 extra specials right after the ChatML ones; keep them so ids stay identical.
SPECIAL_TOKENS: tuple[str, ...] = (ENDOFTEXT, IM_START, IM_END) + tuple(
    f"<|extra_{i}|>" for i in range(205)
)
# v1's split pattern: like cl100k's but digits are split one by one (\p{N}, not \p{N}{1,3}).
QWEN1_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_TOKENIZER_JSON: dict[str, str] = {}  # sha256 of qwen.tiktoken -> tokenizer.json text


def _tokenizer_json(tiktoken_path: Path) -> str:
    """The fast-tokenizer JSON for a qwen.tiktoken file, from memory, disk cache or built."""
    sha = _sha256(tiktoken_path)
    if sha in _TOKENIZER_JSON:
        return _TOKENIZER_JSON[sha]
    cached = cache_dir() / "qwen1-tokenizer" / sha[:16] / "tokenizer.json"
    if cached.is_file():
        text = cached.read_text(encoding="utf-8")
    else:
        from tokenizers import normalizers
        from transformers.convert_slow_tokenizer import TikTokenConverter

        try:
            tok = TikTokenConverter(
                str(tiktoken_path), pattern=QWEN1_PATTERN, extra_special_tokens=list(SPECIAL_TOKENS)
            ).converted()
        except Exception as exc:  # a corrupt or foreign file: say which one
            raise Qwen1ConversionError(
                f"{tiktoken_path} is not a readable tiktoken BPE file: {exc}"
            ) from exc
        tok.normalizer = normalizers.NFC()  # v1 NFC-normalises text before encoding
        first = tok.token_to_id(ENDOFTEXT)
        if first != SPECIAL_START_ID:
            raise Qwen1ConversionError(
                f"{tiktoken_path} has {first} ordinary tokens, expected {SPECIAL_START_ID}: "
                "not the Qwen v1 vocabulary"
            )
        text = tok.to_str()
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, cached)
        except OSError:
            pass  # a read-only cache only costs the rebuild next time
    _TOKENIZER_JSON[sha] = text
    return text


def tokenizer_from_tiktoken(
    tiktoken_path: str | Path, dst: str | Path | None = None, model_max_length: int = 8192
):
    """A fast tokenizer with v1's exact ids, ChatML specials and CHATML_TEMPLATE.

    Building from the BPE file takes a few seconds, so the result is cached (in memory and
    under cache_dir()) by the file's SHA-256. With dst, it is also saved there.
    """
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tiktoken_path = Path(tiktoken_path)
    if not tiktoken_path.is_file():
        raise Qwen1ConversionError(f"Qwen v1 tokenizer file not found: {tiktoken_path}")
    fast = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tokenizer_json(tiktoken_path)),
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHATML_TEMPLATE
    if dst is not None:
        fast.save_pretrained(str(dst))
    return fast


def nfc(text: str) -> str:
    """v1 normalises text to NFC before encoding; exposed for callers comparing strings."""
    return unicodedata.normalize("NFC", text)
