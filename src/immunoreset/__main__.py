from immunoreset.cli import main

if __name__ == "__main__":  # guarded: worker processes (spawn) re-import the main module
    main()
