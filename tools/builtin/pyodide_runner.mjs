// The python tool's supervisor, run by Deno with no permission except reading the Pyodide
// folder (tools/builtin/pyodide_worker.py builds the command line).
//
// This main thread is trusted and never runs user code. Every call runs in a fresh Web
// Worker holding a fresh Pyodide interpreter, restored from a memory snapshot of an interpreter
// that never ran user code (made once, then kept by the parent in the cache); the worker is
// terminated after the call. The next
// worker is prepared after that termination, so no user code is alive while it loads.
//
// Protocol, one line each way: the first line from the parent is {"key": hex, "memory_bytes",
// "snapshot": file name in the Pyodide folder or null, "want_snapshot": send it back?}.
// After that every line in both directions is "<hex HMAC-SHA256 of the JSON> <JSON>" with that
// key. User code can write to this process's stdout and read its stdin (both need no Deno
// permission), but it never sees the key, so it can neither forge nor alter a message; the
// parent drops anything that does not verify. Each response starts on a fresh line.

const PYODIDE_DIR = Deno.args[0];
const enc = new TextEncoder();
const dec = new TextDecoder();

// ---- the worker: runs in its own isolate; code below is stringified into a blob URL ----
function workerMain() {
  const HARNESS = String.raw`
import ast, builtins, inspect, linecache, os, sys, traceback

def _no_system(command):
    raise OSError(38, "the sandbox cannot start processes")

os.system = _no_system  # Emscripten's system() hangs instead of failing

async def _qwen_run(code):
    filename = "<code>"
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    try:
        tree = ast.parse(code, filename, "exec")
    except (SyntaxError, ValueError) as e:
        sys.stderr.write("".join(traceback.format_exception_only(type(e), e)))
        return 1
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    try:
        for node, mode in ((tree, "exec"), (last and ast.Expression(last.value), "eval")):
            if node is None:
                continue
            compiled = compile(node, filename, mode, flags=flags)
            value = eval(compiled, namespace)
            if compiled.co_flags & inspect.CO_COROUTINE:
                value = await value
            if mode == "eval" and value is not None:
                print(repr(value))
        return 0
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException as e:
        frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == filename]
        text = "".join(traceback.format_list(frames))
        text += "".join(traceback.format_exception_only(type(e), e))
        sys.stderr.write("Traceback (most recent call last):\n" + text)
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()

_qwen_run
`;
  let run = null;
  let cap = 0;
  const sent = [0, 0, 0];

  function capMemory(limit) {
    // Growing the wasm heap past the limit fails, so Python raises MemoryError. This is a
    // courtesy for ordinary code; the parent enforces the real limit on the process's RSS.
    const grow = WebAssembly.Memory.prototype.grow;
    Object.defineProperty(WebAssembly.Memory.prototype, "grow", {
      value: function (pages) {
        if (this.buffer.byteLength + pages * 65536 > limit) {
          throw new RangeError("sandbox memory limit");
        }
        return grow.call(this, pages);
      },
      writable: false,
      configurable: false,
    });
  }

  function writer(fd) {
    return {
      isatty: false,
      write(buf) {
        // Forward at most cap+1 bytes per stream; the main thread counts and cuts again.
        const room = cap + 1 - sent[fd];
        if (room > 0) {
          const part = buf.slice(0, Math.min(room, buf.length));
          self.postMessage({ type: "out", fd, data: part }, [part.buffer]);
        }
        sent[fd] += buf.length;
        return buf.length;
      },
    };
  }

  // A promise the user's code dropped must not end the call.
  self.addEventListener("unhandledrejection", (e) => e.preventDefault());

  function useCompiled(module) {
    // Pyodide instantiates its wasm from the file's bytes; hand it the module the main
    // thread compiled once instead (V8 shares the compiled code between workers).
    const instantiate = WebAssembly.instantiate;
    WebAssembly.instantiate = async (source, imports) =>
      source instanceof WebAssembly.Module
        ? instantiate(source, imports)
        : { instance: await instantiate(module, imports), module };
  }

  self.onmessage = async (event) => {
    const m = event.data;
    try {
      if (m.type === "snapshot" || m.type === "load") {
        if (m.type === "load") capMemory(m.memoryBytes);
        useCompiled(m.module);
        const { loadPyodide } = await import(m.moduleUrl);
        const py = await loadPyodide({
          indexURL: m.dir + "/",
          _makeSnapshot: m.type === "snapshot",
          _loadSnapshot: m.snapshot,
          stdout: () => {},
          stderr: () => {},
          stdin: () => null,
        });
        if (m.type === "snapshot") {
          const snapshot = py.makeMemorySnapshot();
          self.postMessage({ type: "snapshot", snapshot }, [snapshot.buffer]);
          return;
        }
        py.setStdout(writer(1));
        py.setStderr(writer(2));
        py.setStdin({ stdin: () => null });
        run = py.runPython(HARNESS);
        // Storage that would outlive this worker inside the process: not offered.
        for (const name of ["localStorage", "sessionStorage", "caches"]) {
          try {
            delete globalThis[name];
          } catch (_) { /* not present */ }
        }
        self.postMessage({ type: "ready", python: py.runPython("import sys; sys.version.split()[0]") });
      } else if (m.type === "run") {
        cap = m.maxOutput;
        const exit = await run(m.code);
        self.postMessage({ type: "done", exit: typeof exit === "number" ? exit : 1, sent });
      }
    } catch (err) {
      self.postMessage({ type: "failed", error: String(err && err.stack || err).slice(0, 2000) });
    }
  };
}

const WORKER_URL = URL.createObjectURL(
  new Blob([`(${workerMain})()`], { type: "application/javascript" }),
);
const MODULE_URL = new URL("file://" + PYODIDE_DIR + "/pyodide.mjs").href;
const WASM = await WebAssembly.compile(Deno.readFileSync(PYODIDE_DIR + "/pyodide.asm.wasm"));

// ---- messages to and from the parent ----
let key = null;

function hex(bytes) {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

function unhex(text) {
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.substr(i * 2, 2), 16);
  return out;
}

function writeAll(text) {
  let data = enc.encode(text);
  while (data.length) data = data.subarray(Deno.stdout.writeSync(data));
}

async function send(message) {
  const body = JSON.stringify(message);
  const mac = await crypto.subtle.sign("HMAC", key, enc.encode(body));
  writeAll("\n" + hex(mac) + " " + body + "\n");
}

async function verified(line) {
  const space = line.indexOf(" ");
  const mac = line.slice(0, space);
  const body = line.slice(space + 1);
  if (space !== 64 || !/^[0-9a-f]{64}$/.test(mac)) return null;
  const ok = await crypto.subtle.verify("HMAC", key, unhex(mac), enc.encode(body));
  return ok ? JSON.parse(body) : null;
}

async function* lines() {
  let buffered = "";
  for await (const chunk of Deno.stdin.readable) {
    buffered += dec.decode(chunk, { stream: true });
    let nl;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      yield buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
    }
  }
}

// ---- workers ----
function startWorker(message, transfer = []) {
  const worker = new Worker(WORKER_URL, { type: "module" });
  const loaded = new Promise((resolve, reject) => {
    worker.onmessage = (e) => {
      if (e.data.type === "failed") reject(new Error(e.data.error));
      else resolve(e.data);
    };
    worker.onerror = (e) => {
      e.preventDefault();
      reject(new Error(e.message));
    };
  });
  worker.postMessage({ ...message, module: WASM, moduleUrl: MODULE_URL, dir: PYODIDE_DIR }, transfer);
  return { worker, loaded };
}

async function takeSnapshot() {
  const { worker, loaded } = startWorker({ type: "snapshot" });
  try {
    return await loaded;
  } finally {
    worker.terminate();
  }
}

function runIn(worker, request) {
  const kept = [[], [], []];
  const keptBytes = [0, 0, 0];
  const received = [0, 0, 0];
  return new Promise((resolve) => {
    let timer = null;
    const finish = (result) => {
      clearTimeout(timer);
      worker.terminate();
      const text = (fd) => {
        const all = new Uint8Array(keptBytes[fd]);
        let at = 0;
        for (const part of kept[fd]) {
          all.set(part, at);
          at += part.length;
        }
        return dec.decode(all);
      };
      resolve({
        stdout: text(1),
        stderr: text(2),
        stdout_bytes: Math.max(received[1], result.sent ? result.sent[1] : 0),
        stderr_bytes: Math.max(received[2], result.sent ? result.sent[2] : 0),
        exit: result.exit ?? null,
        timed_out: !!result.timedOut,
        error: result.error ?? null,
      });
    };
    worker.onmessage = (e) => {
      const m = e.data;
      if (m.type === "out" && (m.fd === 1 || m.fd === 2) && m.data instanceof Uint8Array) {
        received[m.fd] += m.data.length;
        const room = request.max_output - keptBytes[m.fd];
        if (room > 0) {
          const part = m.data.subarray(0, room);
          kept[m.fd].push(part);
          keptBytes[m.fd] += part.length;
        }
      } else if (m.type === "done") {
        finish({ exit: Number.isInteger(m.exit) ? m.exit : 1, sent: m.sent });
      } else if (m.type === "failed") {
        finish({ error: String(m.error).slice(0, 2000) });
      }
    };
    worker.onerror = (e) => {
      e.preventDefault();
      finish({ error: String(e.message).slice(0, 2000) });
    };
    timer = setTimeout(() => finish({ timedOut: true }), request.wall_ms);
    worker.postMessage({ type: "run", code: request.code, maxOutput: request.max_output });
  });
}

// ---- main loop ----
// stdin is read all the time: when the parent goes away (EOF), this process ends at once,
// even in the middle of a call.
const queued = [];
let waiting = null;
(async () => {
  for await (const line of lines()) {
    if (waiting) {
      const resolve = waiting;
      waiting = null;
      resolve(line);
    } else queued.push(line);
  }
  Deno.exit(0);
})();

function nextLine() {
  return queued.length ? Promise.resolve(queued.shift()) : new Promise((r) => (waiting = r));
}

const setup = JSON.parse(await nextLine());
key = await crypto.subtle.importKey(
  "raw",
  unhex(setup.key),
  { name: "HMAC", hash: "SHA-256" },
  false,
  ["sign", "verify"],
);

function startSpare() {
  const copy = snapshot.slice();
  return startWorker({ type: "load", snapshot: copy, memoryBytes: setup.memory_bytes }, [copy.buffer]);
}

function base64(bytes) {
  const parts = [];
  for (let i = 0; i < bytes.length; i += 3 * 8192) {
    parts.push(btoa(String.fromCharCode(...bytes.subarray(i, i + 3 * 8192))));
  }
  return parts.join("");
}

// The snapshot: from the file the parent verified (inside the readable Pyodide folder), or
// made now by a worker that runs no user code; the parent may keep it for the next start.
const started = performance.now();
let snapshot;
let spare;
let loaded;
try {
  snapshot = setup.snapshot
    ? Deno.readFileSync(PYODIDE_DIR + "/" + setup.snapshot)
    : (await takeSnapshot()).snapshot;
  spare = startSpare();
  loaded = await spare.loaded;
} catch (err) {
  await send({ fatal: "Pyodide did not start: " + String(err && err.message || err).slice(0, 2000) });
  Deno.exit(1);
}
await send({
  ready: true,
  python: loaded.python,
  ms: performance.now() - started,
  snapshot: setup.want_snapshot && !setup.snapshot ? base64(snapshot) : null,
});

for (;;) {
  const request = await verified(await nextLine());
  if (!request || typeof request.id !== "string" || typeof request.code !== "string") {
    Deno.exit(3); // lost or damaged input: the parent restarts this process and retries
  }
  await send({ id: request.id, ack: true });
  let result;
  let t0 = performance.now();
  try {
    await spare.loaded;
    await send({ id: request.id, started: true });
    t0 = performance.now();
    result = await runIn(spare.worker, request);
  } catch (err) {
    result = { error: "the interpreter did not load: " + String(err && err.message || err) };
  }
  await send({ id: request.id, ...result, ms: performance.now() - t0 });
  spare = startSpare();
  // "idle": the next interpreter is ready (ok) or failed. The parent then counts the
  // process's worker threads: this one must be the only one.
  spare.loaded.then(() => send({ idle: true, ok: true }), () => send({ idle: true, ok: false }));
}
