"""Bootstrap run inside the python tool's child process (`python -I -B -c <this source>`).

It reads its settings and the user's code as JSON from stdin, lowers its own resource
limits, installs an audit hook, then runs the code like a REPL cell (the value of a final
expression is printed). The hook is defence in depth: the separate process, the limits, the
scrubbed environment, the throw-away working directory and (where the kernel allows) an
empty network namespace do not depend on it. This file must run on the stdlib alone.
"""

from __future__ import annotations

# The parent compiles this source under this name; the hook protects functions defined here.
BOOTSTRAP_FILENAME = "<qwen-demo-sandbox>"


def main() -> int:  # noqa: C901 - one linear setup sequence, kept in one place on purpose
    import ast
    import builtins
    import json
    import linecache
    import os
    import resource
    import signal
    import sys
    import traceback

    cfg = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    code: str = cfg["code"]
    workdir = os.path.realpath(cfg["workdir"])

    for name, value in cfg["limits"].items():
        which = getattr(resource, name, None)
        if which is None or value is None:
            continue
        soft, hard = resource.getrlimit(which)
        new_hard = value if hard == resource.RLIM_INFINITY else min(hard, value)
        if name == "RLIMIT_CPU":  # SIGXCPU at the soft limit, SIGKILL a second later
            new_hard = value + 1 if hard == resource.RLIM_INFINITY else min(hard, value + 1)
        resource.setrlimit(which, (min(value, new_hard), new_hard))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversize write raises instead of killing

    read_roots = {workdir, "/dev/null", "/dev/urandom", "/dev/random", "/etc/localtime"}
    read_roots |= {"/usr/share/zoneinfo", "/usr/lib/locale"}
    for base in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *sys.path):
        if base:
            read_roots.add(os.path.realpath(base))
    # (root, allowed) pairs; the longest matching root decides, a tie goes to "denied".
    read_rules = tuple(
        sorted(
            [(r, True) for r in read_roots]
            + [(os.path.realpath(d), False) for d in cfg.get("deny", [])],
            key=lambda rule: (len(rule[0]), not rule[1]),
            reverse=True,
        )
    )
    write_rules = ((workdir, True), ("/dev/null", True))
    blocked_imports = frozenset(("_posixsubprocess", "_cffi_backend", "cffi", "_xxsubinterpreters"))
    blocked_events = frozenset(
        (
            "subprocess.Popen",
            "os.system",
            "os.exec",
            "os.posix_spawn",
            "os.spawn",
            "os.fork",
            "os.forkpty",
            "os.kill",
            "os.killpg",
            "signal.pthread_kill",
            "pty.spawn",
            "resource.setrlimit",
            "resource.prlimit",
            "sqlite3.enable_load_extension",
            "sqlite3.load_extension",
            "gc.get_objects",
            "gc.get_referrers",
            "gc.get_referents",
            "webbrowser.open",
            "sys.addaudithook",
        )
    )
    read_events = frozenset(("os.listdir", "os.scandir"))
    write_events = frozenset(
        (
            "os.remove",
            "os.rename",
            "os.rmdir",
            "os.mkdir",
            "os.chmod",
            "os.chown",
            "os.symlink",
            "os.link",
            "os.truncate",
            "os.utime",
            "os.chdir",
            "os.setxattr",
            "os.removexattr",
            "shutil.copyfile",
            "shutil.copymode",
            "shutil.copystat",
            "shutil.copytree",
            "shutil.rmtree",
            "shutil.move",
            "shutil.make_archive",
            "shutil.unpack_archive",
        )
    )
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC

    # Everything the hook uses is bound as a positional default: a tuple that cannot be
    # replaced from Python (setting __defaults__ is refused below), so user code cannot swap
    # os.path.realpath, a builtin or a rule list under the hook's feet.
    def hook(  # noqa: C901
        event: str,
        args: tuple,
        _cfg: tuple = (
            read_rules,
            write_rules,
            blocked_imports,
            blocked_events,
            read_events,
            write_events,
            write_flags,
        ),
        _fn: tuple = (
            os.path.realpath,
            os.path.join,
            os.getcwd,
            os.fsdecode,
            os.fspath,
            isinstance,
            hasattr,
            any,
            PermissionError,
            str,
            bytes,
            int,
            getattr,
            BOOTSTRAP_FILENAME,
        ),
    ) -> None:
        reads, writes, no_imports, no_events, r_events, w_events, w_flags = _cfg
        (realpath, join, getcwd, fsdecode, fspath) = _fn[:5]
        (isinst, has, any_, denied, str_, b_, int_, get, own_file) = _fn[5:]

        def check(path: object, write: bool) -> None:
            if path is None or isinst(path, int_):
                return
            try:
                p = realpath(join(getcwd(), fsdecode(fspath(path))))
            except TypeError:
                return
            for root, ok in writes if write else reads:
                if p == root or p.startswith(root.rstrip("/") + "/"):
                    if ok:
                        return
                    break
            what = "writing" if write else "reading"
            raise denied(f"sandbox: {what} {p!r} is not allowed ({event})")

        if event == "open":
            path, mode, flags = args
            check(path, any_(c in (mode or "") for c in "wax+") or bool((flags or 0) & w_flags))
        elif event in r_events:
            check(args[0] if args and args[0] is not None else ".", False)
        elif event in w_events:
            for a in args:
                if isinst(a, (str_, b_)) or has(a, "__fspath__"):
                    check(a, True)
        elif event == "import":
            if args[0] in no_imports or args[0].split(".")[0] in no_imports:
                raise denied(f"sandbox: importing {args[0]} is not allowed")
        elif event.startswith(("socket.", "ctypes.")) or event in no_events:
            raise denied(f"sandbox: {event} is not allowed (no network or processes)")
        elif event == "sqlite3.connect":
            db = args[0]
            if isinst(db, str_) and db.startswith("file:"):
                raise denied("sandbox: sqlite URIs are not allowed; use a file name")
            if not (isinst(db, str_) and db in ("", ":memory:")):
                check(db, True)
        elif event == "object.__setattr__" and args[1] in ("__code__", "__defaults__"):
            # Only this bootstrap's functions (the hook) are protected; libraries such as
            # collections.namedtuple legitimately set __defaults__ on their own functions.
            target = get(args[0], "__code__", None)
            if get(target, "co_filename", None) == own_file:
                raise denied("sandbox: changing the sandbox's own functions is not allowed")

    sys.stdout.reconfigure(errors="backslashreplace", line_buffering=False)
    sys.stderr.reconfigure(errors="backslashreplace")
    sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    try:  # imported before the hook (its import dlopens); later ctypes.* events are refused
        import ctypes  # noqa: F401
    except ImportError:
        pass
    sys.addaudithook(hook)
    del hook, cfg

    filename = "<code>"
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    user_globals: dict = {"__name__": "__main__", "__builtins__": builtins}

    def report(exc: BaseException) -> None:
        # Hide this bootstrap's frames: the user only needs their own code's.
        frames = [
            f for f in traceback.extract_tb(exc.__traceback__) if f.filename != BOOTSTRAP_FILENAME
        ]
        text = "".join(traceback.format_list(frames))
        text += "".join(traceback.format_exception_only(type(exc), exc))
        sys.stderr.write("Traceback (most recent call last):\n" + text)

    try:
        tree = ast.parse(code, filename, "exec")
    except (SyntaxError, ValueError) as e:
        sys.stderr.write("".join(traceback.format_exception_only(type(e), e)))
        return 1
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    try:
        exec(compile(tree, filename, "exec"), user_globals)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), filename, "eval"), user_globals)
            if value is not None:
                print(repr(value))
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException as e:  # noqa: BLE001 - the traceback is the user's feedback
        report(e)
        return 1
    return 0


if __name__ == "__main__":
    import sys as _sys

    _code = main()
    _sys.stdout.flush()
    _sys.stderr.flush()
    _sys.exit(_code)
