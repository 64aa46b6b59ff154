"""python -m bench [name ...]: run the benchmarks (all by default) and print their tables."""
import importlib
import pkgutil
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    """`python -m bench [name ...]`, or `python -m bench name --option ...` to pass options to one benchmark."""
    options: list[str] = []
    if argv and any(a.startswith("-") for a in argv[1:]):
        argv, options = argv[:1], argv[1:]
    names = argv or sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.name != "__main__")
    failed = []
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print(f"\n== {name}: {(module.__doc__ or '').strip().splitlines()[0]}")
        if (module.main(options) if options else module.main()) is False:
            failed.append(name)
    print(f"\n{len(names) - len(failed)} of {len(names)} benchmarks met their targets"
          + (f"; missed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
