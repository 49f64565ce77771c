"""Launch the ilbot desktop app on its built-in default: the sandbox game with the shipped model,
in dry run. Without a display it runs the headless agent on the sandbox instead."""

import sys

from ilbot.gui.launch import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
