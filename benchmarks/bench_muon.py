"""What Muon costs: its step on airbench94's filters against a training step (run by hand).

Muon's extra work is a few GEMMs per filter (3 Newton--Schulz iterations, each
X X^T, (X X^T)^2 and a product with X, on the (out, in*3*3) matrix), whatever
the batch. A training step's work grows with the batch. This times, in one
process on the same model (``airbench94``, float32, through ``compile(model)``):

  step    forward + loss + backward + SGD step at ``--batch`` images, median of
          ``--steps`` after a warm-up, scaled to ``--scale-to`` images
          (airbench94_muon's 2,000) in proportion to the batch
  muon    ``Muon.step()`` on the six 3x3 filters with random gradients, median

and prints muon / step in percent, with numpy's float32 GEMM GFLOP/s and the
processor, measured in the same run. The multiply-adds of both are printed
too: the ratio of the counts is what the times should show on an idle machine.

    python3 benchmarks/bench_muon.py                   # batch 250, scaled to 2,000
    python3 benchmarks/bench_muon.py --batch 2000 --steps 3
    python3 benchmarks/bench_muon.py --smoke           # that it runs: batch 8, 1 step

One process: the two are timed in turns (a training step, then three Muon steps),
so that both see the same load on a shared machine; the fastest of each is quoted
beside the medians.
"""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
from harness import header, sgemm_gflops  # noqa: E402


def newton_schulz_macs(shape, steps=3):
    """Multiply-adds of ``steps`` iterations on a filter of ``shape`` (out, ...)."""
    m = shape[0]
    n = 1
    for d in shape[1:]:
        n *= d
    m, n = min(m, n), max(m, n)
    return steps * (2 * m * m * n + m ** 3)      # X X^T, (X X^T) X-sized product, A A


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=250)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--scale-to", type=int, default=2000)
    ap.add_argument("--smoke", action="store_true", help="batch 8, 1 step: that it runs")
    args = ap.parse_args(argv)
    if args.smoke:
        args.batch, args.steps = 8, 1
    header("Muon's step against a training step of airbench94",
           f"batch {args.batch} scaled to {args.scale_to}, {args.steps} steps, float32, "
           "compile(model)")

    import numpy as np

    import minitorch_cnn
    from minitorch_cnn import models, nn, optim

    rng = np.random.default_rng(0)
    model = models.get_model("airbench94", rng=rng)
    x = rng.standard_normal((args.batch, 32, 32, 3)).astype(np.float32)
    model.init_from_data(x)
    y = rng.integers(0, 10, size=args.batch)
    net = minitorch_cnn.compile(model, input_grad=False)
    criterion = nn.CrossEntropyLoss(label_smoothing=0.2)
    filters, rest = optim.muon_param_groups(model)
    sgd = optim.SGD(model.parameters(), lr=1e-3, momentum=0.85, nesterov=True,
                    weight_decay=1e-5)

    def train_step():
        loss = criterion(net(x), y)
        net.backward(criterion.backward())
        sgd.step()
        model.zero_grad()
        return loss

    muon = optim.Muon(filters, lr=0.24, momentum=0.6, nesterov=True)
    grads = [rng.standard_normal(p.data.shape).astype(np.float32) for p in filters]

    def muon_step():
        for p, g in zip(filters, grads):
            p.grad = g.copy()
        t = time.perf_counter()
        muon.step()
        return time.perf_counter() - t

    # interleaved, so that both see the same load on a shared machine
    gemm, step_times, muon_times = [sgemm_gflops()], [], []
    for i in range(args.steps + 1):
        t = time.perf_counter()
        train_step()
        if i:                                    # the first of each warms up
            step_times.append(time.perf_counter() - t)
        times = [muon_step() for _ in range(3)]
        if i:
            muon_times += times
    gemm.append(sgemm_gflops())
    model.zero_grad()

    step = statistics.median(step_times) * args.scale_to / args.batch
    muon_s = statistics.median(muon_times)
    best = min(muon_times) / (min(step_times) * args.scale_to / args.batch)
    net_macs = 3 * 118_147_360 * args.scale_to        # forward + two backward GEMMs
    ns_macs = sum(newton_schulz_macs(p.data.shape) for p in filters)
    print(f"numpy float32 GEMM 400x1024x1024: {statistics.median(gemm):.0f} GFLOP/s "
          f"(median of {len(gemm)} in this run)")
    print(f"training step, batch {args.batch}: median {statistics.median(step_times):.3f} s "
          f"of {len(step_times)} (fastest {min(step_times):.3f}); scaled to {args.scale_to}: "
          f"{step:.2f} s")
    print(f"Muon step on {len(filters)} filters "
          f"({', '.join('x'.join(map(str, p.data.shape)) for p in filters)}): "
          f"median {1e3 * muon_s:.1f} ms of {len(muon_times)} (fastest {1e3 * min(muon_times):.1f})")
    print(f"Muon / step: {100 * muon_s / step:.2f} % of the time "
          f"(multiply-adds: {ns_macs / 1e9:.2f} G against about {net_macs / 1e9:.0f} G, "
          f"{100 * ns_macs / net_macs:.2f} %); fastest against fastest: {100 * best:.2f} %")


if __name__ == "__main__":
    main()
