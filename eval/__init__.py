"""The tool-use evaluation harness: cases, answer checks, scoring, switches, runner, reports.

Not agent code: it drives agent.loop.run exactly as the app does and scores what comes out.
`python -m eval --help` for the command; eval/README.md for the case format and results.
"""
