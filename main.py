"""Launch the ilbot desktop app on its built-in default: the sandbox game with the shipped model,
in dry run. Without a display it runs the headless agent on the sandbox instead.

    python main.py [APP OPTIONS]                 the app (`python main.py --help`: ilbot.gui.launch)
    python main.py --bench [--frames N] [--json] overlay paint time with 100 ellipses (ilbot.bench.overlay)

This file is the top of the import order: the app (ilbot.gui) imports no benchmark, so
`--bench` is dispatched here.
"""

import sys


def main(argv: list[str]) -> int:
    if "--bench" in argv:
        from ilbot.bench.overlay import main as bench_main

        return bench_main(argv)
    from ilbot.gui.launch import main as app_main

    return app_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
