"""`python -m core.bench NAME [--json] [...]`: the benchmarks without the `sourcelight` entry point."""
import sys

from core.bench import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
