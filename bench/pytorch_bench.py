#!/usr/bin/python3
"""PyTorch (CPU, float32) on recur's benchmark workloads: the peer that bench/compare measures.

Run with Debian's interpreter (/usr/bin/python3, python3-torch 1.13). Debian's torch links the
reference BLAS; bench/compare puts OpenBLAS (openmp flavour) in front with LD_LIBRARY_PATH and runs
this script once per OpenBLAS setting. Each output row records which BLAS library was actually
mapped and the OPENBLAS_CORETYPE in force, so a table can never silently mix settings.

Prints one JSON line per workload and mode:
  name, backend, mode, ms_median, ms_min, ms_max, gflops, repeats, threads, blas, coretype.

With --device cuda (bench/gpu/run, PyTorch built for CUDA): the same workloads on the GPU through cuDNN's RNNs
(backend "pytorch-cudnn"), float32 with TF32 off (recur's cuBLAS calls use full float32 math too). Each run starts
from the inputs on the host and ends with the results copied back, as `recur bench` times its runs, and is also
timed with CUDA events (ms_device_median). A machine without CUDA gets one JSON status line and exit code 3.
FLOPs count GEMMs only (2*M*N*K of the input and recurrent projections; the score and context
products for attention); fwd_bwd counts 3x forward. The same rule as `recur bench` and rnn_bench.c.
"""
import argparse
import json
import os
import statistics
import sys
import time

try:
    import torch
except ImportError as missing_torch:  # reported by main(), with the exit code bench/gpu/run reads
    torch = None
    TORCH_MISSING = str(missing_torch)

# (name, cell, T, B, I, H, layers, bidirectional, modes). Names are shared with
# bench/onednn/rnn_bench.c and bench/compare, which join rows on them.
RNN_WORKLOADS = [
    ("lstm_T50_B32_H256", "lstm", 50, 32, 256, 256, 1, False, ("fwd", "fwd_bwd")),
    ("gru_T50_B32_H256", "gru", 50, 32, 256, 256, 1, False, ("fwd", "fwd_bwd")),
    ("rnn_tanh_T50_B32_H256", "rnn_tanh", 50, 32, 256, 256, 1, False, ("fwd", "fwd_bwd")),
    ("lstm_T100_B64_H512_L2_bi", "lstm", 100, 64, 512, 512, 2, True, ("fwd", "fwd_bwd")),
    ("lstm_T20_B1_H128", "lstm", 20, 1, 128, 128, 1, False, ("fwd",)),
]
# (name, U, B, T, H): Luong dot attention, decoder steps U over encoder steps T.
ATTN_WORKLOADS = [("attn_dot_U50_B32_T100_H256", 50, 32, 100, 256)]
SGEMM = ("sgemm_M1600_N1024_K256", 1600, 1024, 256)

GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1}


def rnn_forward_flops(cell, T, B, I, H, layers, bidir):
    d = 2 if bidir else 1
    g = GATES[cell]
    flops = 0.0
    for layer in range(layers):
        width = I if layer == 0 else d * H
        flops += d * (2.0 * T * B * g * H * width + 2.0 * T * B * g * H * H)
    return flops


def make_rnn(cell, I, H, layers, bidir):
    if cell == "lstm":
        return torch.nn.LSTM(I, H, num_layers=layers, bidirectional=bidir)
    if cell == "gru":
        # PyTorch's GRU is the linear-before-reset variant: n = tanh(W_in x + b_in + r*(W_hn h + b_hn)).
        return torch.nn.GRU(I, H, num_layers=layers, bidirectional=bidir)
    if cell == "rnn_tanh":
        return torch.nn.RNN(I, H, num_layers=layers, bidirectional=bidir, nonlinearity="tanh")
    raise ValueError(f"cell: expected lstm, gru or rnn_tanh, got {cell!r}")


def time_ms(fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def time_cuda(fn, warmup, repeats):
    """Wall milliseconds (host, until the results are back) and CUDA-event milliseconds per run."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    wall, device = [], []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        t0 = time.perf_counter()
        start.record()
        fn()
        end.record()
        end.synchronize()
        wall.append((time.perf_counter() - t0) * 1e3)
        device.append(start.elapsed_time(end))
    return wall, device


def rnn_runner(cell, T, B, I, H, layers, bidir, mode, device="cpu"):
    torch.manual_seed(0)
    model = make_rnn(cell, I, H, layers, bidir).float().to(device)
    d = 2 if bidir else 1
    x = torch.randn(T, B, I)
    if device != "cpu":
        # As recur bench times it: inputs from the host, outputs back to the host, every run.
        dy_host = torch.randn(T, B, d * H)
        params = list(model.parameters())
        if mode == "fwd":
            model.eval()

            def run():
                with torch.no_grad():
                    y, _ = model(x.to(device))
                    y.cpu()
            return run
        model.train()

        def run():
            for p in params:
                p.grad = None
            xd = x.to(device).requires_grad_(True)
            y, _ = model(xd)
            y.backward(dy_host.to(device))
            xd.grad.cpu()
            for p in params:
                p.grad.cpu()
        return run
    if mode == "fwd":
        model.eval()

        def run():
            with torch.no_grad():
                model(x)
        return run

    # Training step: gradients of x and every parameter for the loss sum(y*dy); the grads are
    # dropped every repeat so nothing accumulates (oneDNN's harness zeroes its own likewise).
    model.train()
    x.requires_grad_(True)
    dy = torch.randn(T, B, d * H)
    params = list(model.parameters())

    def run():
        for p in params:
            p.grad = None
        x.grad = None
        y, _ = model(x)
        y.backward(dy)
    return run


def attention_runner(U, B, T, H, device="cpu"):
    torch.manual_seed(0)
    dec = torch.randn(B, U, H)
    enc = torch.randn(B, T, H)
    # Encoder lengths from T down to about T/2, so the mask really removes positions.
    lengths = torch.tensor([T - (b * T) // (2 * B) for b in range(B)])
    pad = (torch.arange(T)[None, :] >= lengths[:, None])[:, None, :].to(device)  # [B, 1, T]

    def run():
        with torch.no_grad():
            d, e = dec.to(device), enc.to(device)
            scores = torch.bmm(d, e.transpose(1, 2))              # [B, U, T]
            weights = torch.softmax(scores.masked_fill(pad, float("-inf")), dim=-1)
            context = torch.bmm(weights, e)                      # [B, U, H]
            if device != "cpu":
                context.cpu()
    return run


def sgemm_runner(M, N, K, device="cpu"):
    torch.manual_seed(0)
    a, b = torch.randn(M, K, device=device), torch.randn(K, N, device=device)
    out = torch.empty(M, N, device=device)

    def run():
        for _ in range(10):  # several calls per repeat, like rnn_bench.c's sgemm
            torch.mm(a, b, out=out)
    return run


def blas_library():
    """The BLAS shared object really mapped into this process (LD_LIBRARY_PATH can be wrong)."""
    libs = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            if "blas" in os.path.basename(path):
                libs.add(path)
    real = sorted(p for p in libs if "openblas" in os.path.basename(p)) or sorted(libs)
    return real[0] if real else "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--only", help="one workload name (or 'sgemm')")
    ap.add_argument("--list", action="store_true", help="print the workload names and exit")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                    help="cpu (default): OpenBLAS as bench/compare sets it up; cuda: cuDNN on the GPU")
    args = ap.parse_args()
    if args.threads < 1:
        ap.error(f"--threads: expected >= 1, got {args.threads}")
    if args.repeats < 1:
        ap.error(f"--repeats: expected >= 1, got {args.repeats}")
    if args.warmup < 0:
        ap.error(f"--warmup: expected >= 0, got {args.warmup}")
    names = [SGEMM[0]] + [w[0] for w in RNN_WORKLOADS] + [w[0] for w in ATTN_WORKLOADS]
    if args.list:
        print("\n".join(names))
        return 0
    only = SGEMM[0] if args.only == "sgemm" else args.only
    if only is not None and only not in names:
        ap.error(f"--only: no workload named {only!r}; known: {', '.join(names)}")

    dev = args.device
    if torch is None:
        print(json.dumps({"backend": "pytorch-cudnn" if dev == "cuda" else "pytorch", "available": False,
                          "reason": f"{sys.executable} has no torch ({TORCH_MISSING})"}), flush=True)
        return 3
    if dev == "cuda":
        if not torch.cuda.is_available():
            print(json.dumps({"backend": "pytorch-cudnn", "available": False, "torch": torch.__version__,
                              "reason": f"torch {torch.__version__}: torch.cuda.is_available() is False "
                                        f"(built for CUDA {torch.version.cuda})"}), flush=True)
            return 3
        # Full float32 on both sides: recur's cuBLAS calls do not use TF32 either.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        blas = f"cuDNN {torch.backends.cudnn.version()} on {torch.cuda.get_device_name(0)}"
        coretype = "n/a"
        timer = time_cuda
    else:
        torch.set_num_threads(args.threads)
        blas = blas_library()
        coretype = os.environ.get("OPENBLAS_CORETYPE", "default")
        if "openblas" not in blas:
            print(f"pytorch_bench: warning: BLAS is {blas}, not OpenBLAS: timings will be far from "
                  "PyTorch's best (see bench/README.md)", file=sys.stderr)
        timer = lambda fn, w, r: (time_ms(fn, w, r), None)  # noqa: E731

    def emit(name, mode, timed, flops, per_call=1):
        times, device = timed
        times = [t / per_call for t in times]
        med = statistics.median(times)
        row = {
            "name": name, "backend": "pytorch-cudnn" if dev == "cuda" else "pytorch", "mode": mode,
            "ms_median": round(med, 4), "ms_min": round(min(times), 4), "ms_max": round(max(times), 4),
            "gflops": round(flops / (med * 1e6), 2), "repeats": len(times), "threads": args.threads,
            "blas": blas, "coretype": coretype, "torch": torch.__version__,
        }
        if device is not None:
            row["ms_device_median"] = round(statistics.median(device) / per_call, 4)
        print(json.dumps(row), flush=True)

    if only in (None, SGEMM[0]):
        name, M, N, K = SGEMM
        emit(name, "sgemm", timer(sgemm_runner(M, N, K, dev), args.warmup, args.repeats), 2.0 * M * N * K, per_call=10)
    for name, cell, T, B, I, H, layers, bidir, modes in RNN_WORKLOADS:
        if only not in (None, name):
            continue
        for mode in modes:
            run = rnn_runner(cell, T, B, I, H, layers, bidir, mode, dev)
            flops = rnn_forward_flops(cell, T, B, I, H, layers, bidir) * (3 if mode == "fwd_bwd" else 1)
            emit(name, mode, timer(run, args.warmup, args.repeats), flops)
    for name, U, B, T, H in ATTN_WORKLOADS:
        if only not in (None, name):
            continue
        emit(name, "fwd", timer(attention_runner(U, B, T, H, dev), args.warmup, args.repeats),
             4.0 * B * U * T * H)
    return 0


if __name__ == "__main__":
    sys.exit(main())
