#!/usr/bin/env python3
"""model-server: a tiny HTTP inference server for an ONNX classifier.

Stdlib http.server (ThreadingHTTPServer) + onnxruntime + numpy.

  GET  /healthz     -> 200 {"status": "ok"}
  GET  /v1/model    -> 200 model metadata (model.json)
  POST /v1/predict  {"instances": [[f1, f2, ...], ...]}
                    -> 200 {"predictions": [{"class", "class_id", "probabilities"}], "model"}
  bad input         -> 400 {"error": "..."}
  unknown path      -> 404 {"error": "..."}

Environment: PORT (default 8080), HOST (default 0.0.0.0),
MODEL_PATH (default /app/model.onnx; metadata is read from the .json next to it).
Designed to run as PID 1: SIGTERM/SIGINT shut the server down and exit 0.
"""
import json
import math
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

# onnxruntime >= 1.2x collects telemetry and tries to persist a device id under
# $HOME/.cache (read-only for the "model" user); opt out before importing it.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
import onnxruntime as ort  # noqa: E402

MAX_BODY_BYTES = 1 << 20  # 1 MiB
MAX_INSTANCES = 10000


def log(msg: str) -> None:
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


class BadRequest(Exception):
    pass


class Model:
    def __init__(self, path: str):
        self.path = path
        meta_path = os.path.splitext(path)[0] + ".json"
        with open(meta_path) as f:
            self.meta = json.load(f)
        self.name = self.meta.get("name", os.path.basename(path))
        self.class_names = [str(c) for c in self.meta["class_names"]]
        self.feature_names = list(self.meta.get("feature_names", []))

        opts = ort.SessionOptions()
        opts.log_severity_level = 3  # errors only
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        shape = inp.shape
        n = shape[1] if len(shape) == 2 and isinstance(shape[1], int) else len(self.feature_names)
        if not n:
            raise RuntimeError(f"cannot determine feature count from input shape {shape}")
        self.n_features = n
        outputs = [o.name for o in self.session.get_outputs()]
        self.prob_output = "probabilities" if "probabilities" in outputs else outputs[-1]

    def parse(self, payload):
        if not isinstance(payload, dict):
            raise BadRequest('body must be a JSON object like {"instances": [[...], ...]}')
        if "instances" not in payload:
            raise BadRequest('missing "instances"')
        rows = payload["instances"]
        if not isinstance(rows, list):
            raise BadRequest('"instances" must be a list of rows')
        if not rows:
            raise BadRequest('"instances" is empty')
        if len(rows) > MAX_INSTANCES:
            raise BadRequest(f'too many instances: {len(rows)} > {MAX_INSTANCES}')
        for i, row in enumerate(rows):
            if not isinstance(row, list):
                raise BadRequest(f"instances[{i}] must be a list of {self.n_features} numbers")
            if len(row) != self.n_features:
                raise BadRequest(
                    f"instances[{i}] has {len(row)} values, expected {self.n_features}"
                    + (f" ({', '.join(self.feature_names)})" if self.feature_names else "")
                )
            for j, v in enumerate(row):
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise BadRequest(f"instances[{i}][{j}] is not a number: {json.dumps(v)}")
                if not math.isfinite(v):
                    raise BadRequest(f"instances[{i}][{j}] is not finite")
        return np.asarray(rows, dtype=np.float32)

    def predict(self, x):
        probs = self.session.run([self.prob_output], {self.input_name: x})[0]
        probs = np.asarray(probs, dtype=np.float64)
        out = []
        for p in probs:
            cid = int(np.argmax(p))
            out.append(
                {
                    "class": self.class_names[cid],
                    "class_id": cid,
                    "probabilities": {c: round(float(v), 6) for c, v in zip(self.class_names, p)},
                }
            )
        return out


class Handler(BaseHTTPRequestHandler):
    server_version = "model-server/1"
    model: Model = None  # set in main()

    def log_message(self, fmt, *args):  # one line per request, to stdout
        log(f"{self.address_string()} - [{self.log_date_time_string()}] {fmt % args}")

    def send_json(self, code: int, obj) -> None:
        body = (json.dumps(obj) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self.send_json(200, {"status": "ok"})
        elif path == "/v1/model":
            self.send_json(200, self.model.meta)
        elif path == "/v1/predict":
            self.send_json(405, {"error": "method not allowed: use POST /v1/predict"})
        else:
            self.send_json(404, {"error": f"not found: {path}"})

    do_HEAD = do_GET

    def do_POST(self):
        path = self.path.split("?", 1)[0]
        if path != "/v1/predict":
            if path in ("/healthz", "/v1/model"):
                self.send_json(405, {"error": f"method not allowed: use GET {path}"})
            else:
                self.send_json(404, {"error": f"not found: {path}"})
            return
        try:
            length = self.headers.get("Content-Length")
            if length is None:
                raise BadRequest("missing Content-Length")
            try:
                length = int(length)
            except ValueError:
                raise BadRequest("invalid Content-Length")
            if length <= 0:
                raise BadRequest("empty body")
            if length > MAX_BODY_BYTES:
                raise BadRequest(f"body too large: {length} > {MAX_BODY_BYTES} bytes")
            raw = self.rfile.read(length)
            try:
                payload = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as e:
                raise BadRequest(f"body is not valid JSON: {e}")
            x = self.model.parse(payload)
        except BadRequest as e:
            self.send_json(400, {"error": str(e)})
            return
        try:
            preds = self.model.predict(x)
        except Exception as e:  # noqa: BLE001 - report, don't crash the worker
            log(f"model-server: inference error: {e!r}")
            self.send_json(500, {"error": f"inference failed: {e}"})
            return
        self.send_json(200, {"predictions": preds, "model": self.model.name})


def main() -> int:
    host = os.environ.get("HOST", "0.0.0.0")
    port_s = os.environ.get("PORT", "8080")
    try:
        port = int(port_s)
    except ValueError:
        log(f"model-server: invalid PORT {port_s!r}")
        return 2
    model_path = os.environ.get("MODEL_PATH", "/app/model.onnx")

    t0 = time.monotonic()
    model = Model(model_path)
    Handler.model = model

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    httpd = ThreadingHTTPServer((host, port), Handler)

    stopping = threading.Event()

    def on_signal(signum, _frame):
        if stopping.is_set():
            return
        stopping.set()
        log(f"model-server: received {signal.Signals(signum).name}, shutting down")
        # shutdown() blocks until serve_forever() returns; serve_forever runs in
        # this (main) thread, so call it from another one.
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    log(
        f"model-server: loaded {model_path} ({model.meta.get('dataset', model.name)}, "
        f"{len(model.class_names)} classes) in {time.monotonic() - t0:.2f}s; "
        f"onnxruntime {ort.__version__}; listening on {host}:{port}"
    )
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        httpd.server_close()
    log("model-server: stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
