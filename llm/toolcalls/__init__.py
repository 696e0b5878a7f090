"""Tool calls on the wire: the one parser and renderer of each format.

hermes: Qwen2.5 / Qwen3 `<tool_call>{json}</tool_call>` (also `<tools>` wrappings), shared by
the agent, the OpenAI-compatible server and the ChatML renderer. react: the ReAct
`Action: / Action Input:` block. jsontext: reading the JSON a model wrote inside other text.
"""
