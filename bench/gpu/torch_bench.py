#!/usr/bin/env python3
"""PyTorch's side of factornet's GPU comparison: the training step of fnet-bench's models.

usage: torch_bench.py [--configs LIST] [--repeat N] [--steps N] [--seconds X] [--json FILE]
                      [--device D] [--dry-run]

Times the whole training step that `fnet-bench --device cuda` times (bench/fnet_bench.c): a
batch gathered on the device from a random permutation of 60000 synthetic Fashion-MNIST-shaped
images (784 uint8 pixels held on the GPU, scaled by 1/255 to float32; labels i mod 10), forward,
softmax cross-entropy, backward and an Adam step (lr 1e-3), all in float32 with TF32 off
(checked: a float32 matmul against float64). Each configuration runs twice:

  eager   the step as plain PyTorch code; torch.optim.Adam with its defaults (foreach on CUDA)
  graph   the whole step captured in one CUDA graph (torch.cuda.graph's "whole network
          capture" recipe: static index buffer, warm-up on a side stream, gradients set to None
          before capture, torch.optim.Adam(capturable=True)); each step copies the batch's
          indices into the static buffer and replays the graph

Configurations (--configs, comma-separated; default all):

  seed     784-64-32-10 (ReLU between), batch 32
  wide     784-1024-1024-10, batch 4096
  wide256  784-1024-1024-10, batch 256
  big      784-4096-4096-10, batch 1024
  tt       784-1024-TT(1024)-10, batch 256: the middle layer a tensor train with input and
           output modes 4x8x8x4 and ranks 1,8,8,8,1, cores (r_k, m_k, n_k, r_{k+1}) with m the
           output and n the input modes (factornet's layout, docs/tt.md), applied core by core
           with torch.einsum as t3f and TensorLy-Torch do; compare with wide256

Timing: CUDA events around N steps (N chosen so that one repeat takes about --seconds, or
--steps), after warm-up, repeated --repeat times; the median is reported as samples/s and as the
model's TFLOP/s. FLOPs count the work done: 2·B·n_in·n_out for a dense layer's forward, twice
that for its backward (weight and input gradients) except the first layer, whose input gradient
nobody computes (the count fnet-bench uses); for the TT layer each einsum's 2·(product of all
its dimensions), three times (forward, and the gradients of both operands).

Then, for the TT-SVD and the GEMMs: torch.linalg.svd of a random 1024x1024 float32 matrix
(full_matrices=False; the default driver and each cuSOLVER driver), median of 10 after warm-up,
in ms; and a 4096x4096x4096 float32 matmul's rate in TFLOP/s.

Output: a table on stdout; with --json FILE, JSON lines: one object per (config, mode),
{"event":"torch_bench","config","mode","model" (fnet-bench's spec of the same network),"batch",
"samples_per_s","step_ms","tflops","flops_per_step","steps","repeat","loss",...}, one
{"event":"svd",...} per driver and one {"event":"sgemm",...}; a configuration that fails writes
{"event":"torch_bench","config","mode","error"} and the run goes on (exit status 1 at the end).

--dry-run builds every configuration on the CPU, checks the TT layer against its dense
reconstruction and runs two eager steps of each: no GPU needed. --device cpu runs the whole
script on the CPU (wall-clock timing; the graph rows fail) to try it where there is no GPU.

Needs python3 and PyTorch (numpy is not used).
"""

import argparse
import gc
import json
import math
import statistics
import sys
import time
import warnings

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:  # pragma: no cover - depends on the machine
    sys.stderr.write("torch_bench.py: error: PyTorch is not installed for %s (%s); run it where "
                     "`%s -c 'import torch'` works\n" % (sys.executable, e, sys.executable))
    sys.exit(2)

N_SAMPLES = 60000
N_IN = 784
N_CLASSES = 10
LR = 1e-3
TT_MODES = (4, 8, 8, 4)
TT_RANK = 8

# name -> (hidden widths or "tt", batch, fnet-bench spec of the same network)
CONFIGS = {
    "seed": ((64, 32), 32, "dense:64,relu,dense:32,relu,dense:10"),
    "wide": ((1024, 1024), 4096, "dense:1024,relu,dense:1024,relu,dense:10"),
    "wide256": ((1024, 1024), 256, "dense:1024,relu,dense:1024,relu,dense:10"),
    "big": ((4096, 4096), 1024, "dense:4096,relu,dense:4096,relu,dense:10"),
    "tt": ("tt", 256, "dense:1024,relu,tt:1024:rank=8:in=4x8x8x4:out=4x8x8x4,relu,dense:10"),
}


class TTLinear(nn.Module):
    """y (B, N) = x (B, M)·W + b, W[(i_1..i_d), (j_1..j_d)] = Π_k G_k[:, j_k, i_k, :]."""

    def __init__(self, in_modes, out_modes, ranks):
        super().__init__()
        self.in_modes, self.out_modes, self.ranks = tuple(in_modes), tuple(out_modes), tuple(ranks)
        d = len(in_modes)
        n_in, n_out = math.prod(in_modes), math.prod(out_modes)
        # each W entry sums Π r_k (inner ranks) products of d core entries: choose the cores'
        # std so that Var(W) = 2 / (n_in + n_out), as Glorot's
        inner = math.prod(ranks[1:-1])
        std = (2.0 / (n_in + n_out) / inner) ** (1.0 / (2 * d))
        self.cores = nn.ParameterList(
            nn.Parameter(torch.randn(ranks[k], out_modes[k], in_modes[k], ranks[k + 1]) * std)
            for k in range(d))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        # t (B, P, r_k, n_k, Q): P the output modes done, Q the input modes still to contract
        B = x.shape[0]
        t = x.reshape(B, 1, 1, self.in_modes[0], -1)
        for k, G in enumerate(self.cores):
            t = torch.einsum("bprnq,rmns->bpmsq", t, G)  # (B, P, m_k, r_{k+1}, Q)
            if k + 1 < len(self.cores):
                b, p, m, s, q = t.shape
                t = t.reshape(b, p * m, s, self.in_modes[k + 1], q // self.in_modes[k + 1])
        return t.reshape(B, -1) + self.bias

    def einsum_flops(self, B):
        """Multiply-adds ×2 of the forward einsums at batch B."""
        flops, P, Q = 0, 1, math.prod(self.in_modes)
        for k in range(len(self.in_modes)):
            Q //= self.in_modes[k]
            flops += 2 * B * P * self.ranks[k] * self.in_modes[k] * self.out_modes[k] \
                * self.ranks[k + 1] * Q
            P *= self.out_modes[k]
        return flops

    def dense_weight(self):
        """W (n_in, n_out) from the cores (the test's reference)."""
        full = self.cores[0].permute(2, 1, 0, 3).reshape(self.in_modes[0], self.out_modes[0], -1)
        for G in list(self.cores)[1:]:
            M, N, _ = full.shape
            full = torch.einsum("MNr,rmns->MnNms", full, G)
            full = full.reshape(M * G.shape[2], N * G.shape[1], G.shape[3])
        return full[:, :, 0]


def build_model(name):
    """The configuration's nn.Sequential and its forward+backward FLOPs per sample."""
    hidden = CONFIGS[name][0]
    if hidden == "tt":
        tt = TTLinear(TT_MODES, TT_MODES, (1,) + (TT_RANK,) * (len(TT_MODES) - 1) + (1,))
        model = nn.Sequential(nn.Linear(N_IN, 1024), nn.ReLU(), tt, nn.ReLU(),
                              nn.Linear(1024, N_CLASSES))
        dense = [(N_IN, 1024, True), (1024, N_CLASSES, False)]
        flops = 3 * tt.einsum_flops(1)
    else:
        widths = (N_IN,) + tuple(hidden) + (N_CLASSES,)
        layers = []
        for i in range(len(widths) - 1):
            layers.append(nn.Linear(widths[i], widths[i + 1]))
            if i + 2 < len(widths):
                layers.append(nn.ReLU())
        model = nn.Sequential(*layers)
        dense = [(widths[i], widths[i + 1], i == 0) for i in range(len(widths) - 1)]
        flops = 0
    for n_in, n_out, first in dense:
        flops += (4 if first else 6) * n_in * n_out
    return model, flops


def layers_text(name):
    hidden = CONFIGS[name][0]
    mid = ["1024", "tt1024"] if hidden == "tt" else [str(h) for h in hidden]
    return "-".join([str(N_IN)] + mid + [str(N_CLASSES)])


def make_data(device, n=N_SAMPLES):
    """Images (n, 784) uint8 and labels (n,) int64 on the device, and a random permutation."""
    g = torch.Generator(device="cpu").manual_seed(7)
    images = torch.randint(0, 256, (n, N_IN), dtype=torch.uint8, generator=g).to(device)
    labels = (torch.arange(n) % N_CLASSES).to(device)
    perm = torch.randperm(n, generator=g).to(device)
    return images, labels, perm


def train_step(model, images, labels, idx):
    """Gather, forward, loss, backward; the optimizer step is the caller's."""
    x = torch.index_select(images, 0, idx).to(torch.float32).mul_(1.0 / 255.0)
    y = torch.index_select(labels, 0, idx)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    return loss


class Batches:
    """Positions in the permutation as fnet's trainer takes them: B at a time, wrapping."""

    def __init__(self, perm, B):
        self.perm, self.B, self.pos = perm, B, 0

    def next(self):
        if self.pos + self.B > self.perm.shape[0]:
            self.pos = 0
        idx = self.perm[self.pos:self.pos + self.B]
        self.pos += self.B
        return idx


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(run, n_steps, device):
    """Seconds of n_steps calls of run(): CUDA events on the current stream (on the CPU, where
    only the script itself is tried, the wall clock)."""
    if device.type != "cuda":
        t0 = time.perf_counter()
        for _ in range(n_steps):
            run()
        return time.perf_counter() - t0
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(n_steps):
        run()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) * 1e-3


def measure(run, args, device):
    """Median seconds per step over args.repeat repeats, and the step count of one repeat."""
    for _ in range(3):
        run()
    sync(device)
    n = args.steps
    if n <= 0:  # about args.seconds per repeat
        t = time_steps(run, 10, device) / 10
        n = max(10, min(20000, int(args.seconds / max(t, 1e-7))))
    per_step = [time_steps(run, n, device) / n for _ in range(args.repeat)]
    return statistics.median(per_step), n


def bench_eager(name, images, labels, perm, args):
    torch.manual_seed(0)
    model, _ = build_model(name)
    model = model.to(images.device)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    batches = Batches(perm, CONFIGS[name][1])
    last = {}

    def run():
        opt.zero_grad(set_to_none=True)
        last["loss"] = train_step(model, images, labels, batches.next())
        opt.step()

    sec, n = measure(run, args, images.device)
    return sec, n, float(last["loss"].item()), "torch.optim.Adam(lr=1e-3) defaults"


def bench_graph(name, images, labels, perm, args):
    if images.device.type != "cuda":
        raise RuntimeError("CUDA graphs need a CUDA device")
    torch.manual_seed(0)
    model, _ = build_model(name)
    model = model.to(images.device)
    opt = torch.optim.Adam(model.parameters(), lr=LR, capturable=True)
    B = CONFIGS[name][1]
    batches = Batches(perm, B)
    static_idx = torch.empty(B, dtype=torch.int64, device=images.device)
    static_idx.copy_(batches.next())

    # warm-up on a side stream before capture (torch.cuda.graph's documented recipe)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            train_step(model, images, labels, static_idx)
            opt.step()
    torch.cuda.current_stream().wait_stream(s)

    # gradients None before capture: backward allocates .grad from the graph's private pool
    g = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(g):
        static_loss = train_step(model, images, labels, static_idx)
        opt.step()

    def run():
        static_idx.copy_(batches.next(), non_blocking=True)
        g.replay()

    sec, n = measure(run, args, images.device)
    loss = float(static_loss.item())
    return sec, n, loss, "torch.optim.Adam(lr=1e-3, capturable=True)"


def check_tf32_off(device):
    """Relative error of a float32 matmul against float64: ~1e-6 in IEEE float32, ~3e-4 in TF32."""
    g = torch.Generator(device="cpu").manual_seed(1)
    a = torch.randn(1024, 1024, generator=g, dtype=torch.float64)
    b = torch.randn(1024, 1024, generator=g, dtype=torch.float64)
    ref = a @ b
    c = (a.float().to(device) @ b.float().to(device)).double().cpu()
    return float(torch.linalg.norm(c - ref) / torch.linalg.norm(ref))


def disable_tf32(device):
    """TF32 off for cuBLAS and cuDNN, checked by a matmul's error against float64; the error.
    The flags are only ever written, never read: PyTorch 2.9+ refuses to read a legacy flag
    after the per-backend API (fp32_precision) was used."""
    legacy = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy flags' deprecation warning
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
    except Exception:  # noqa: BLE001 - a build without the legacy flags
        legacy = False
    err = check_tf32_off(device)
    if (err > 5e-5 or not legacy) and hasattr(torch.backends.cuda.matmul, "fp32_precision"):
        torch.backends.cuda.matmul.fp32_precision = "ieee"
        if hasattr(torch.backends.cudnn, "fp32_precision"):
            torch.backends.cudnn.fp32_precision = "ieee"
        err = check_tf32_off(device)
    return err


def bench_svd(device):
    """[(driver, median ms, reconstruction error)] for a 1024x1024 float32 torch.linalg.svd."""
    g = torch.Generator(device="cpu").manual_seed(2)
    a = torch.randn(1024, 1024, generator=g).to(device)
    out = []
    for driver in (None, "gesvd", "gesvdj", "gesvda"):
        try:
            kw = {} if driver is None else {"driver": driver}
            U, S, Vh = torch.linalg.svd(a, full_matrices=False, **kw)  # warm-up
            sync(device)
            times = []
            for _ in range(10):
                sec = time_steps(lambda: torch.linalg.svd(a, full_matrices=False, **kw), 1, device)
                times.append(sec * 1e3)
            err = float(torch.linalg.norm((U * S) @ Vh - a) / torch.linalg.norm(a))
            out.append((driver or "default", statistics.median(times), err, None))
        except Exception as e:  # noqa: BLE001 - report and go on
            out.append((driver or "default", None, None, "%s: %s" % (type(e).__name__, e)))
    return out


def bench_sgemm(device, repeat):
    """n and the median TFLOP/s of an n x n x n float32 matmul: 4096 (1024 on the CPU)."""
    n = 4096 if device.type == "cuda" else 1024
    g = torch.Generator(device="cpu").manual_seed(3)
    a = torch.randn(n, n, generator=g).to(device)
    b = torch.randn(n, n, generator=g).to(device)
    c = torch.empty(n, n, device=device)
    for _ in range(3):
        torch.matmul(a, b, out=c)
    sync(device)
    rates = []
    for _ in range(repeat):
        sec = time_steps(lambda: torch.matmul(a, b, out=c), 10, device) / 10
        rates.append(2.0 * n ** 3 / sec * 1e-12)
    return n, statistics.median(rates)


def dry_run(names):
    """Every configuration on the CPU: the TT layer against W, then two eager steps."""
    torch.manual_seed(0)
    tt = TTLinear(TT_MODES, TT_MODES, (1, 8, 8, 8, 1))
    with torch.no_grad():
        x = torch.randn(5, 1024)
        y = tt(x)
        ref = x @ tt.dense_weight() + tt.bias
        err = float(torch.linalg.norm(y - ref) / torch.linalg.norm(ref))
    print("TT layer against its dense reconstruction: relative error %.2e" % err)
    if not err < 1e-5:
        print("torch_bench.py: error: the TT layer does not match its dense reconstruction")
        return 1
    images, labels, perm = make_data("cpu", n=8192)
    for name in names:
        torch.manual_seed(0)
        model, flops = build_model(name)
        opt = torch.optim.Adam(model.parameters(), lr=LR)
        batches = Batches(perm, CONFIGS[name][1])
        losses = []
        for _ in range(2):
            opt.zero_grad(set_to_none=True)
            losses.append(float(train_step(model, images, labels, batches.next()).item()))
            opt.step()
        params = sum(p.numel() for p in model.parameters())
        print("%-8s %-20s batch %5d  params %9d  flops/sample %11d  loss %.4f -> %.4f"
              % (name, layers_text(name), CONFIGS[name][1], params, flops, losses[0], losses[1]))
        if not all(math.isfinite(v) for v in losses):
            print("torch_bench.py: error: %s: loss is not finite" % name)
            return 1
    print("dry run ok")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default=",".join(CONFIGS),
                    help="comma-separated, of %s (default: all)" % ", ".join(CONFIGS))
    ap.add_argument("--repeat", type=int, default=5, help="repeats; the median is reported")
    ap.add_argument("--steps", type=int, default=0,
                    help="steps per repeat (default 0: about --seconds per repeat)")
    ap.add_argument("--seconds", type=float, default=0.25, help="time per repeat when --steps 0")
    ap.add_argument("--json", metavar="FILE", help="JSON lines, one object per (config, mode)")
    ap.add_argument("--dry-run", action="store_true",
                    help="build every configuration on the CPU and run two eager steps")
    ap.add_argument("--device", default="cuda",
                    help="torch device (default cuda; cpu only tries the script: no graphs)")
    args = ap.parse_args()
    names = [c for c in args.configs.split(",") if c]
    unknown = [c for c in names if c not in CONFIGS]
    if unknown or not names:
        ap.error("--configs: unknown %s (expected some of %s)" % (",".join(unknown) or "(none)",
                                                                  ", ".join(CONFIGS)))
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    if args.dry_run:
        return dry_run(names)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.stderr.write("torch_bench.py: error: no CUDA device (torch %s, built for CUDA %s); "
                         "--dry-run runs on the CPU\n" % (torch.__version__, torch.version.cuda))
        return 1
    jf = open(args.json, "w") if args.json else None

    def emit(obj):
        if jf:
            jf.write(json.dumps(obj) + "\n")
            jf.flush()

    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    err = disable_tf32(device)
    tf32 = err > 5e-5
    common = {"device": gpu, "torch": torch.__version__, "cuda": torch.version.cuda,
              "tf32": tf32}
    print("%s, torch %s, CUDA %s; float32 matmul relative error %.1e (TF32 %s)"
          % (gpu, torch.__version__, torch.version.cuda, err, "ON?!" if tf32 else "off"))
    if tf32:
        print("torch_bench.py: warning: TF32 looks on: the rates below are not float32's")

    t0 = time.time()
    images, labels, perm = make_data(device)
    failed = 0
    rows = []
    print("%-8s %-20s %6s %-6s %7s %10s %12s %8s %8s"
          % ("config", "layers", "batch", "mode", "steps", "step ms", "samples/s", "TFLOP/s",
             "loss"))
    for name in names:
        _, flops_per_sample = build_model(name)
        B = CONFIGS[name][1]
        for mode, fn in (("eager", bench_eager), ("graph", bench_graph)):
            base = {"event": "torch_bench", "config": name, "mode": mode,
                    "model": CONFIGS[name][2], "layers": layers_text(name), "batch": B}
            try:
                sec, n, loss, optim = fn(name, images, labels, perm, args)
            except Exception as e:  # noqa: BLE001 - report and go on
                failed += 1
                msg = "%s: %s" % (type(e).__name__, e)
                print("%-8s %-20s %6d %-6s  failed: %s" % (name, layers_text(name), B, mode, msg))
                emit(dict(base, error=msg, **common))
                continue
            finally:
                gc.collect()
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            sps = B / sec
            tflops = flops_per_sample * B / sec * 1e-12
            rows.append((name, mode, sps))
            print("%-8s %-20s %6d %-6s %7d %10.4f %12.0f %8.2f %8.4f"
                  % (name, layers_text(name), B, mode, n, sec * 1e3, sps, tflops, loss))
            sys.stdout.flush()
            emit(dict(base, samples_per_s=sps, step_ms=sec * 1e3, tflops=tflops,
                      flops_per_step=flops_per_sample * B, steps=n, repeat=args.repeat,
                      loss=loss, optimizer=optim, **common))
            if not math.isfinite(loss):
                failed += 1
                print("torch_bench.py: error: %s %s: the loss is not finite" % (name, mode))
    by = {(c, m): s for c, m, s in rows}
    for mode in ("eager", "graph"):
        if ("tt", mode) in by and ("wide256", mode) in by:
            print("tt against the dense wide network at batch 256, %s: %.2fx the samples/s"
                  % (mode, by[("tt", mode)] / by[("wide256", mode)]))

    for driver, ms, rel, error in bench_svd(device):
        if error:
            failed += 1
            print("svd 1024x1024 float32, driver %-8s failed: %s" % (driver, error))
            emit(dict({"event": "svd", "n": 1024, "driver": driver, "error": error}, **common))
        else:
            print("svd 1024x1024 float32, driver %-8s %9.2f ms (median of 10), ‖USVᵀ−A‖/‖A‖ %.1e"
                  % (driver, ms, rel))
            emit(dict({"event": "svd", "n": 1024, "driver": driver, "ms": ms,
                       "reconstruction_error": rel}, **common))
    try:
        n, rate = bench_sgemm(device, args.repeat)
        print("sgemm %dx%dx%d float32: %.2f TFLOP/s (median of %d)" % (n, n, n, rate, args.repeat))
        emit(dict({"event": "sgemm", "n": n, "tflops": rate, "matmul_rel_err": err}, **common))
    except Exception as e:  # noqa: BLE001
        failed += 1
        print("sgemm failed: %s: %s" % (type(e).__name__, e))
    print("torch_bench.py: %.1f s, %d failed" % (time.time() - t0, failed))
    if jf:
        jf.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
