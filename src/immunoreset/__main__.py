from immunoreset.cli import main

main()
