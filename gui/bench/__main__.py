"""`python -m gui.bench NAME [--json] [...]`: every benchmark, the window ones included."""
import sys

from gui.bench import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
