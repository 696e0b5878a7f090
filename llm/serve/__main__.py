from llm.serve.cli import main

main()
