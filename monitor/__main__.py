"""`python -m monitor` entry point; hands over to the CLI."""

from monitor.cli import main

if __name__ == "__main__":
    main()
